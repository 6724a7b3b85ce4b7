#!/usr/bin/env bash
# Set up, then execute the whole book in full mode, in order, saving every
# notebook with its outputs and writing the figures to images/.
#   bash scripts/book.sh            load the models and rows shipped in checkpoints/ and results/ (minutes)
#   bash scripts/book.sh --retrain  train every model from scratch (VIT_TUTORIAL_RETRAIN=1; hours on a CPU)
#   bash scripts/book.sh --record   also keep the timings as a speed row in results/speed/ (the speed page)
set -euo pipefail
cd "$(dirname "$0")/.."
record=0
for arg in "$@"; do
    case "$arg" in
        --retrain) export VIT_TUTORIAL_RETRAIN=1 ;;
        --record) record=1 ;;
        *) echo "usage: bash scripts/book.sh [--retrain] [--record]" >&2; exit 2 ;;
    esac
done
book_start=$(date +%s)
bash scripts/setup.sh
export VIT_TUTORIAL_QUICK=${VIT_TUTORIAL_QUICK:-0}
timings=()
for nb in notebooks/[0-9][0-9]_*.ipynb; do
    echo "== $nb"
    start=$(date +%s)
    .venv/bin/jupyter nbconvert --to notebook --execute --inplace \
        --ExecutePreprocessor.timeout=-1 --ExecutePreprocessor.kernel_name=python3 \
        --ExecutePreprocessor.record_timing=False "$nb"
    seconds=$(( $(date +%s) - start ))
    timings+=("$(basename "$nb" .ipynb)=$seconds")
    echo "   $seconds s"
done
.venv/bin/jupytext --sync notebooks/[0-9][0-9]_*.ipynb >/dev/null
total=$(( $(date +%s) - book_start ))
echo "Done in $total s (set-up included): notebooks executed, figures in images/"
if [ "$record" = 1 ]; then
    .venv/bin/python -m vit_tutorial.speed book "$total" "${timings[@]}"
fi
