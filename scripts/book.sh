#!/usr/bin/env bash
# Set up, then execute the whole book in full mode, in order, saving every
# notebook with its outputs and writing the figures to images/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export VIT_TUTORIAL_QUICK=${VIT_TUTORIAL_QUICK:-0}
for nb in notebooks/[0-9][0-9]_*.ipynb; do
    echo "== $nb"
    start=$(date +%s)
    .venv/bin/jupyter nbconvert --to notebook --execute --inplace \
        --ExecutePreprocessor.timeout=-1 --ExecutePreprocessor.kernel_name=python3 "$nb"
    echo "   $(( $(date +%s) - start )) s"
done
.venv/bin/jupytext --sync notebooks/[0-9][0-9]_*.ipynb >/dev/null
echo "Done: notebooks executed, figures in images/"
