#!/usr/bin/env bash
# make-venv.sh VENV REQUIREMENTS: makes the virtualenv VENV (a path relative to the project root)
# with the pinned packages of REQUIREMENTS when it is missing or its pins changed; prints its python.
# Built beside the final folder and moved there, so an interrupted install leaves no half venv.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/$1"
req="$root/$2"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/requirements.txt"; then
  echo "installing $(grep -v '^#' "$req" | tr '\n' ' ')into $venv" >&2
  rm -rf "$venv.tmp"
  python3 -m venv "$venv.tmp" 2>/dev/null || { rm -rf "$venv.tmp"; echo "python3 -m venv failed: apt-get install python3-venv" >&2; exit 1; }
  "$venv.tmp/bin/pip" install -q --disable-pip-version-check -r "$req"
  cp "$req" "$venv.tmp/requirements.txt"
  rm -rf "$venv"
  mv "$venv.tmp" "$venv"
  # a venv's scripts name their folder: point them at the final one
  grep -rlF "$venv.tmp" "$venv/bin" | xargs -r sed -i "s#$venv.tmp#$venv#g"
fi
echo "$venv/bin/python"
