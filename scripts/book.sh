#!/usr/bin/env bash
# Set up, then execute the whole book in full mode, in order, saving every
# notebook with its outputs and writing the figures to images/.
#   bash scripts/book.sh            load the models shipped in checkpoints/ (minutes)
#   bash scripts/book.sh --retrain  train every model from scratch (VIT_TUTORIAL_RETRAIN=1)
set -euo pipefail
cd "$(dirname "$0")/.."
for arg in "$@"; do
    case "$arg" in
        --retrain) export VIT_TUTORIAL_RETRAIN=1 ;;
        *) echo "usage: bash scripts/book.sh [--retrain]" >&2; exit 2 ;;
    esac
done
bash scripts/setup.sh
export VIT_TUTORIAL_QUICK=${VIT_TUTORIAL_QUICK:-0}
book_start=$(date +%s)
for nb in notebooks/[0-9][0-9]_*.ipynb; do
    echo "== $nb"
    start=$(date +%s)
    .venv/bin/jupyter nbconvert --to notebook --execute --inplace \
        --ExecutePreprocessor.timeout=-1 --ExecutePreprocessor.kernel_name=python3 "$nb"
    echo "   $(( $(date +%s) - start )) s"
done
.venv/bin/jupytext --sync notebooks/[0-9][0-9]_*.ipynb >/dev/null
echo "Done in $(( $(date +%s) - book_start )) s: notebooks executed, figures in images/"
