#!/usr/bin/env bash
# Sets up everything the test suite needs on a fresh machine, runs the static checks, then the tests.
#   bash scripts/test.sh                 # whole suite (SQLite; Postgres/Redis too when TEST_* are set)
#   SKIP_CHECKS=1 bash scripts/test.sh tests/api   # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
. .venv/bin/activate
# The lock pins the whole transitive set with hashes; --no-deps: nothing outside it gets in.
pip install -q --disable-pip-version-check --require-hashes --no-deps -r requirements-dev.lock \
  2> >(grep -v "^WARNING: Location" >&2)
pip check

bash scripts/setup_system.sh

if [ -z "${SKIP_CHECKS:-}" ]; then
  bash scripts/check.sh
fi

exec python -m pytest -p no:cacheprovider "$@"
