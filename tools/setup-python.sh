#!/usr/bin/env bash
# Makes .venv-tools, the virtualenv of the real systems the tests run against (tools/requirements.txt:
# the MLflow server and library, pytest), when it is missing or its pins changed; prints its python.
# The README's test command and .ci/run call it; with the same pins it does nothing.
exec "$(dirname "$0")/make-venv.sh" .venv-tools tools/requirements.txt
