#!/usr/bin/env bash
# Set up the book on a fresh clone: a virtual environment in .venv with
# PyTorch and everything the notebooks, the website and the tests need. Safe to run again.
#   TORCH_SPEC  which torch/torchvision to install (default: "torch>=2.4 torchvision>=0.19")
#   PYTHON      the interpreter to build .venv from (default: python3)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip install --quiet --disable-pip-version-check)
# torch with its CUDA libraries takes about 6.5 GB in .venv; say so before pip fails half-way.
free_kb=$(df -Pk . | awk 'NR == 2 {print $4}')
if [ "${free_kb:-0}" -lt $((7 * 1024 * 1024)) ] && [ ! -d .venv/lib/python3*/site-packages/torch ]; then
    echo "warning: $((free_kb / 1024 / 1024)) GB free here; installing torch into .venv needs about 7 GB" >&2
fi
# shellcheck disable=SC2086
"${PIP[@]}" ${TORCH_SPEC:-"torch>=2.4" "torchvision>=0.19"}
"${PIP[@]}" -e ".[dev,site]"
# Fashion-MNIST, when Debian's package can be installed (root on Debian/Ubuntu); optional.
if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null 2>&1 \
        || echo "note: Debian's dataset-fashion-mnist could not be installed; Fashion-MNIST will be downloaded"
fi
# Chromium for the browser test of the website (tests/test_site.py; playwright drives
# Debian's build, never one it downloads), when Debian's package can be installed; optional.
if ! command -v chromium >/dev/null && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
        || echo "note: Debian's chromium could not be installed; tests/test_site.py will be skipped"
fi
