#!/usr/bin/env bash
# Build the book as a static website from the committed, executed notebooks;
# nothing is executed again. Offline: MathJax ships with the site.
#   bash scripts/site.sh            writes docs/_build/html/index.html
#   bash scripts/site.sh BUILD      writes BUILD/html/index.html (the tests build into a temporary folder)
#   SITE_PYTHON                     the interpreter with Sphinx (default: .venv/bin/python, set up when it lacks Sphinx)
# Warnings are errors: a broken link, image or docstring fails the build.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-docs/_build}
if [ -z "${SITE_PYTHON:-}" ]; then
    SITE_PYTHON=.venv/bin/python
    "$SITE_PYTHON" -c 'import myst_nb, sphinx_book_theme' 2>/dev/null || bash scripts/setup.sh
fi
# -E: read every page again, so that the warnings of unchanged pages count too
"$SITE_PYTHON" -m sphinx -b html -E -W --keep-going -q -d "$BUILD/doctrees" docs "$BUILD/html"
echo "Site: $BUILD/html/index.html"
