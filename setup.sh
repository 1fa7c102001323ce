#!/usr/bin/env bash
# One-command setup: uses the active virtualenv if there is one, else creates ./.venv.
# torch is installed first and pinned, so that pip never pulls the multi-GB CUDA wheels.
set -euo pipefail
cd "$(dirname "$0")"
if [ -n "${VIRTUAL_ENV:-}" ]; then PY="$VIRTUAL_ENV/bin/python"; else
  [ -x .venv/bin/python ] || python3 -m venv .venv
  PY=.venv/bin/python
fi
"$PY" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
"$PY" -m pip install -q "torch==${DETZOO_TORCH_VERSION:-2.13.0}"
"$PY" -m pip install -q -e ".[test]"
echo "detzoo installed into $("$PY" -c 'import sys; print(sys.prefix)'); run: $PY -m pytest"
