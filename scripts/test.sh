#!/usr/bin/env bash
# Install everything the test suite needs into .venv (and tests/compat/node_modules), then run it.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
if [ -f tests/compat/package-lock.json ]; then
  if command -v npm >/dev/null 2>&1; then
    npm ci --prefix tests/compat --silent --no-audit --no-fund
  else
    echo "npm not found: the official-SDK compatibility tests need Node.js 20+ and npm" >&2
  fi
fi
# The xAPI connector is tested against a real Ralph LRS, which pins FastAPI/uvicorn versions that
# clash with lmsgate's: it lives in its own virtualenv, created once.
if [ ! -x .venv-ralph/bin/ralph ]; then
  rm -rf .venv-ralph
  "$PYTHON" -m venv .venv-ralph
  .venv-ralph/bin/python -m pip install --quiet --upgrade pip
  .venv-ralph/bin/python -m pip install --quiet 'ralph-malph[cli,lrs]>=5.1,<6' 'requests>=2.31,<3'
fi
# Two test processes by default (pytest-xdist): the suite spends much of its time waiting on the
# servers, workers and databases it starts. LMSGATE_TEST_WORKERS=0 runs it in one process.
exec .venv/bin/python -m pytest -n "${LMSGATE_TEST_WORKERS:-2}" "$@"
