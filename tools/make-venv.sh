#!/usr/bin/env bash
# make-venv.sh VENV REQUIREMENTS: makes the virtualenv of the pinned packages of REQUIREMENTS (and of
# the constraints.txt beside it, when there is one) and links VENV (a path relative to the project
# root) to it; prints its python. The virtualenv lives in a cache outside the clone
# (${GENPIPE_VENV_CACHE:-~/.cache/genpipe/venvs}/<name>-<digest of the pins>), so a new clone on the
# same machine (CI's) reuses it, and changed pins make a new one. Built aside and moved in place, so
# an interrupted install leaves no half venv. Each line "# post-install: ARGS" of REQUIREMENTS runs
# "pip ARGS" after the main install, in order.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
link="$root/$1"
req="$root/$2"
constraints="$(dirname "$req")/constraints.txt"
[ -f "$constraints" ] || constraints=""
cache="${GENPIPE_VENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/genpipe/venvs}"
digest=$(cat "$req" ${constraints:+"$constraints"} | sha256sum | cut -c1-12)
venv="$cache/$(basename "$1" | sed 's/^\.//')-$digest"
if [ ! -x "$venv/bin/python" ]; then
  echo "installing $(grep -v '^#' "$req" | tr '\n' ' ')into $venv" >&2
  mkdir -p "$cache"
  rm -rf "$venv.tmp"
  python3 -m venv "$venv.tmp" 2>/dev/null || { rm -rf "$venv.tmp"; echo "python3 -m venv failed: apt-get install python3-venv" >&2; exit 1; }
  "$venv.tmp/bin/pip" install -q --disable-pip-version-check -r "$req" ${constraints:+-c "$constraints"}
  sed -n 's/^# post-install: //p' "$req" | while read -r post; do
    # shellcheck disable=SC2086
    "$venv.tmp/bin/pip" --disable-pip-version-check $post
  done
  cp "$req" "$venv.tmp/requirements.txt"
  # a venv's scripts name their folder: point them at the final one
  grep -rlF "$venv.tmp" "$venv.tmp/bin" | xargs -r sed -i "s#$venv.tmp#$venv#g"
  mv "$venv.tmp" "$venv"
fi
# the link in the project: a folder left by an older version of this script is replaced
if [ "$(readlink "$link" 2>/dev/null)" != "$venv" ]; then
  rm -rf "$link"
  ln -s "$venv" "$link"
fi
echo "$link/bin/python"
