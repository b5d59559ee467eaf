#!/usr/bin/env bash
# Makes .venv-tools, the virtualenv of the real systems the tests run against (tools/requirements.txt:
# Airflow with the Spark provider, the MLflow server and library, pyspark's Spark distribution, pytest),
# when it is missing or its pins changed; prints its python. The README's test command and .ci/run
# call it; with the same pins it only checks the link (the virtualenv is cached outside the clone).
exec "$(dirname "$0")/make-venv.sh" .venv-tools tools/requirements.txt
