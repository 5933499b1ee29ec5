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
exec .venv/bin/python -m pytest "$@"
