#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh machine, then runs it. Extra arguments go to pytest.
#   bash scripts/test.sh                 # whole suite (SQLite; Postgres/Redis too when TEST_* are set)
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
pip install -q --disable-pip-version-check -r requirements-dev.txt 2>&1 | grep -v "^WARNING: Location" || true
pip check >/dev/null 2>&1 || pip install -q --disable-pip-version-check -r requirements-dev.txt

bash scripts/setup_system.sh

exec python -m pytest -p no:cacheprovider "$@"
