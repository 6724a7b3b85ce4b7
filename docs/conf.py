"""Sphinx configuration of the book's website: ``bash scripts/site.sh`` builds it.

The pages come from the committed, executed notebooks (``notebooks/``, reached
through the ``docs/notebooks`` link); they are never executed again here.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # autodoc imports the package from this checkout

project = "vit-tutorial"
author = "the vit-tutorial authors"
copyright = "the vit-tutorial authors"
release = "0.1.0"

extensions = [
    "myst_nb",  # Markdown pages and the notebooks, outputs as committed
    "sphinx.ext.autodoc",  # the API reference, from the package's docstrings
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx-mathjax-offline",  # MathJax served from the site, not from a CDN
]

exclude_patterns = ["_build", "**/.ipynb_checkpoints"]
source_suffix = {".md": "myst-nb", ".ipynb": "myst-nb"}

# Notebooks
nb_execution_mode = "off"  # the committed outputs are the book: never run again here
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# API reference
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}

# HTML
html_theme = "sphinx_book_theme"
html_title = "vit-tutorial"
html_static_path = ["_static"]
html_favicon = "_static/favicon.svg"  # without one, the browser asks for /favicon.ico and logs a 404
html_copy_source = True  # the notebook pages' download button points at these copies
html_sourcelink_suffix = ""  # ... so that a notebook downloads as .ipynb, not .ipynb.txt
# The theme reads its colour mode from here; left empty, every first visit logs
# "Got invalid theme mode" to the console. Light: the figures have white backgrounds.
html_context = {"default_mode": "light"}
html_theme_options = {
    "use_download_button": True,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "show_toc_level": 2,
}


# ---------------------------------------------------------------- the README as the landing page

LINK = re.compile(r"(!?\[[^\]]*\])\(([^)\s]+)\)")  # [text](target) and ![alt](target)


def readme_for_the_site(text: str) -> str:
    """The README with its links made to work from ``docs/index.md``.

    Its relative links point from the project's root: to a file they get a
    ``../`` (the site then serves a copy of it; a missing file is a warning,
    so an error), to a folder, which a static site cannot list, they become
    plain text. Code blocks are left as they are. The notebook names in its
    table of the book link to their pages.
    """

    def fix(match: re.Match) -> str:
        label, target = match.groups()
        if re.match(r"[a-z][a-z0-9+.-]*:|#", target):  # a URL or an anchor
            return match.group(0)
        if target.startswith("docs/") and target.endswith(".md"):  # a page of the website itself
            return f"{label}({target[len('docs/'):]})"
        if target == "CHANGELOG.md":  # the website has it as a page of its own
            return f"{label}(changelog.md)"
        if (REPO / target.split("#", 1)[0]).is_dir() and not label.startswith("!"):
            return label[1:-1]
        return f"{label}(../{target})"  # a file that is missing fails the build

    # Split at the code fences: the odd pieces are code.
    pieces = re.split(r"(^```.*?^```)", text, flags=re.M | re.S)
    text = "".join(piece if i % 2 else LINK.sub(fix, piece) for i, piece in enumerate(pieces))

    def notebook(match: re.Match) -> str:
        name = match.group(1)
        if (REPO / "notebooks" / f"{name}.ipynb").is_file():
            return f"| {{doc}}`{name} <notebooks/{name}>` |"  # a Markdown link would follow docs/notebooks
        return match.group(0)

    return re.sub(r"^\| `(\d\d_\w+)` \|", notebook, text, flags=re.M)


def _on_include_read(app, relative_path, parent_docname, content):
    if Path(relative_path).name == "README.md":
        content[0] = readme_for_the_site(content[0])


# ---------------------------------------------------------------- every module in the API reference


def modules_missing_from(api_text: str) -> list:
    """The package's modules that ``api.md`` does not document yet (a module added since it was written)."""
    names = sorted(p.stem for p in (REPO / "vit_tutorial").glob("*.py") if not p.stem.startswith("_"))
    return [name for name in names if f"automodule:: vit_tutorial.{name}\n" not in api_text]


def _on_source_read(app, docname, content):
    if docname == "api":
        missing = modules_missing_from(content[0])
        if missing:
            content[0] += "\n## More modules\n\n" + "".join(
                f"```{{eval-rst}}\n.. automodule:: vit_tutorial.{name}\n```\n\n" for name in missing)


def setup(app):
    app.connect("include-read", _on_include_read)
    app.connect("source-read", _on_source_read)
