#!/usr/bin/env bash
# Set up, then run every test: the unit tests in tests/ and every notebook under
# nbval, in quick mode (VIT_TUTORIAL_QUICK=1: less data, fewer epochs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export VIT_TUTORIAL_QUICK=1
exec .venv/bin/python -m pytest --nbval --durations=15 "$@"
