#!/usr/bin/env bash
# Logs two quickstart runs (300 and 600 training steps) into a fresh MLflow server, then has headless
# Chromium (Debian's chromium) open the MLflow UI's run comparison of them and save screenshots:
#   docs/mlflow-compare.png   the compare view (params that differ, metrics side by side)
#   docs/mlflow-runs.png      the experiment's run table
# and prints `pipeline compare` of the same runs. Needs .venv-tools (tools/setup-python.sh) and
# chromium (apt-get install chromium). About 3 minutes on 2 cores.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
work=$(mktemp -d)
port=$(.venv-tools/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
uri="http://127.0.0.1:$port"
.venv-tools/bin/mlflow server --backend-store-uri "sqlite:///$work/mlflow.db" --serve-artifacts \
  --artifacts-destination "$work/artifacts" --host 127.0.0.1 --port "$port" --workers 1 > "$work/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 120); do curl -sf "$uri/health" >/dev/null && break; sleep 1; done
experiment=quickstart-ui
for steps in 300 600; do
  ./pipeline quickstart --config conf/quickstart.yaml --set "tracking.uri=$uri" --set "tracking.experiment=$experiment" \
    --set "train.steps=$steps" --set "tracking.runName=quickstart-$steps-steps" --set "train.output=$work/runs" \
    > "$work/quickstart-$steps.log" 2>&1 || { tail -30 "$work/quickstart-$steps.log"; exit 1; }
done
ids=$(.venv-tools/bin/python - "$uri" "$experiment" <<'PY'
import json, sys, urllib.request
uri, name = sys.argv[1], sys.argv[2]
exp = json.load(urllib.request.urlopen(f"{uri}/api/2.0/mlflow/experiments/get-by-name?experiment_name={name}"))
eid = exp["experiment"]["experiment_id"]
req = urllib.request.Request(f"{uri}/api/2.0/mlflow/runs/search", data=json.dumps({"experiment_ids": [eid]}).encode(),
                             headers={"Content-Type": "application/json"})
runs = [r["info"]["run_id"] for r in json.load(urllib.request.urlopen(req))["runs"]]
print(eid, json.dumps(runs, separators=(",", ":")))
PY
)
eid=${ids%% *}
runs=${ids#* }
shot() { # URL PNG
  chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1600,2600 \
    --virtual-time-budget=20000 --screenshot="$2" "$1" >/dev/null 2>&1
  echo "wrote $2"
}
shot "$uri/#/compare-runs?runs=$runs&experiments=[\"$eid\"]" docs/mlflow-compare.png
shot "$uri/#/experiments/$eid" docs/mlflow-runs.png
./pipeline compare --experiment "$experiment" --set "tracking.uri=$uri" --chart docs/compare-quickstart.png
