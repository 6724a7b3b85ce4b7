"""The book as a website, and the notebooks in JupyterLab, checked in a real browser.

``scripts/site.sh`` builds the site from the committed notebooks into a
temporary folder; a thread serves it on 127.0.0.1; Debian's headless
Chromium, driven through playwright, visits every page. JupyterLab is started
on the notebooks, opens notebook 01, and is stopped again. Where Chromium,
playwright or Sphinx is missing the tests are skipped, saying which.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import REPO

CHROMIUM = os.environ.get("VIT_TUTORIAL_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps calling Google's
# hosts, which fail offline and fill the log with errors that are not the page's.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
TIMEOUT_MS = 30_000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def output_images(notebook: Path) -> int:
    """How many images the notebook's committed outputs hold."""
    cells = json.loads(notebook.read_text())["cells"]
    return sum("image/png" in out.get("data", {}) for c in cells if c["cell_type"] == "code"
               for out in c.get("outputs", []))


def jupyter_traces(folder: Path) -> list:
    """What JupyterLab leaves in a folder it serves: checkpoints, virtual documents of its LSP, new notebooks.

    (Other files may change meanwhile: the tests run beside people editing the book.)
    """
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.name.startswith("Untitled"))


# ---------------------------------------------------------------- fixtures: browser, site, server


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The site, built by scripts/site.sh from the notebooks as they are now."""
    for module in ("sphinx", "myst_nb", "sphinx_book_theme", "sphinx-mathjax-offline"):
        pytest.importorskip(module, reason=f"{module} is not installed (pip install -e '.[site]')")
    build = tmp_path_factory.mktemp("site")
    env = dict(os.environ, SITE_PYTHON=sys.executable)
    run = subprocess.run(["bash", "scripts/site.sh", str(build)], cwd=REPO, env=env, capture_output=True, text=True)
    assert run.returncode == 0, f"scripts/site.sh failed:\n{run.stdout}\n{run.stderr}"
    assert (build / "html" / "index.html").is_file()
    return build / "html"


def test_the_site_is_built_from_the_notebooks_with_its_own_mathjax(site):
    """Needs no browser: the pages are there, and MathJax is a file of the site, not a CDN's."""
    for path in ["index.html", "api.html", "search.html"] + [f"notebooks/{nb.stem}.html" for nb in NOTEBOOKS]:
        assert (site / path).is_file(), f"{path} was not built"
    assert (site / "_static" / "mathjax" / "tex-chtml.js").is_file()
    page = (site / "notebooks" / "04_attention.html").read_text()
    assert 'src="../_static/mathjax/tex-chtml.js' in page
    assert "cdn" not in "".join(line for line in page.splitlines() if "mathjax" in line.lower())


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="module")
def server(site):
    """The site served on 127.0.0.1 by a thread; yields the base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as e:
        return e.code


# ---------------------------------------------------------------- one visit of every page

# What the browser reads off a page once it has loaded, its math typeset and its images decoded.
READ_PAGE = """async () => {
    if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
    const imgs = [...document.querySelectorAll('img')];
    imgs.forEach(img => { img.loading = 'eager'; });
    await Promise.all(imgs.map(img => img.decode().catch(() => null)));
    // The prose as a reader sees it: code, scripts and typeset math left out.
    const body = document.querySelector('main') || document.body;
    const prose = body.cloneNode(true);
    prose.querySelectorAll('pre, code, script, style, mjx-container, mjx-assistive-mml, .MathJax')
        .forEach(e => e.remove());
    return {
        title: document.title,
        images: imgs.map(img => ({src: img.currentSrc || img.src, width: img.naturalWidth,
                                  output: !!img.closest('.cell_output')})),
        links: [...document.querySelectorAll('a[href]')].map(a => a.href),
        ids: [...document.querySelectorAll('[id], a[name]')].map(e => e.id || e.getAttribute('name')),
        math: document.querySelectorAll('mjx-container').length,
        mathjax: !!document.querySelector('script[src*="mathjax"]'),
        text: prose.innerText,
    };
}"""


@dataclass
class Page:
    url: str
    errors: list = field(default_factory=list)  # console errors, uncaught exceptions, failed requests
    title: str = ""
    images: list = field(default_factory=list, repr=False)
    links: list = field(default_factory=list, repr=False)
    ids: set = field(default_factory=set, repr=False)
    math: int = 0
    mathjax: bool = False
    text: str = field(default="", repr=False)


def is_html(url: str) -> bool:
    path = urllib.parse.urlsplit(url).path
    return path.endswith(".html") or path.endswith("/")


@pytest.fixture(scope="module")
def crawl(browser, server) -> dict:
    """Every HTML page reachable from the landing page, visited once: {url without fragment: Page}."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    # The search page is reached through a form, the indexes are not linked by the theme.
    queue = [server + path for path in ("index.html", "search.html", "genindex.html", "py-modindex.html")]
    pages, current = {}, None
    page.on("console", lambda m: m.type == "error" and current.errors.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: current.errors.append(f"exception: {e}"))
    # A request cut off by going on to the next page (the favicon, often) fails with ERR_ABORTED: not the page's fault.
    page.on("requestfailed", lambda r: "ERR_ABORTED" not in (r.failure or "")
            and current.errors.append(f"request failed: {r.url} {r.failure}"))
    page.on("response", lambda r: r.status >= 400 and current.errors.append(f"HTTP {r.status}: {r.url}"))
    try:
        while queue:
            url = queue.pop(0)
            if url in pages:
                continue
            current = pages[url] = Page(url)
            response = page.goto(url, wait_until="load")
            if response is None or response.status != 200:
                current.errors.append(f"HTTP {response and response.status}: {url}")
                continue
            for key, value in page.evaluate(READ_PAGE).items():
                setattr(current, key, set(value) if key == "ids" else value)
            for link in current.links:
                target = urllib.parse.urldefrag(link).url
                if target.startswith(server) and is_html(target) and target not in pages:
                    queue.append(target)
    finally:
        context.close()
    return pages


def page_of(crawl: dict, server: str, path: str) -> Page:
    assert server + path in crawl, f"{path} is not reachable from the landing page"
    return crawl[server + path]


# ---------------------------------------------------------------- the site


def test_every_page_loads_without_console_errors(crawl, server):
    expected = ["index.html", "api.html", "search.html", "genindex.html"] + \
        [f"notebooks/{nb.stem}.html" for nb in NOTEBOOKS]
    for path in expected:
        page_of(crawl, server, path)
    problems = {p.url: p.errors for p in crawl.values() if p.errors}
    assert not problems, problems


def test_every_image_has_loaded(crawl, server):
    broken = [(p.url, img["src"]) for p in crawl.values() for img in p.images if img["width"] == 0]
    assert not broken, broken
    landing = page_of(crawl, server, "index.html")
    readme_images = (REPO / "README.md").read_text().count("![")
    assert len(landing.images) >= readme_images > 0, "the landing page should show the README's figures"


def test_every_notebook_page_shows_all_its_figures(crawl, server):
    for nb in NOTEBOOKS:
        page = page_of(crawl, server, f"notebooks/{nb.stem}.html")
        shown = [img for img in page.images if img["output"] and img["width"] > 0]
        expected = output_images(nb)
        assert len(shown) == expected, f"{nb.name}: {len(shown)} figures shown, {expected} in the notebook"


def test_notebook_08_shows_its_attention_figures(crawl, server):
    page = page_of(crawl, server, "notebooks/08_attention_maps.html")
    assert "Attention" in page.title
    figures = [img for img in page.images if img["output"]]
    assert len(figures) >= 5 and all(img["width"] > 0 for img in figures), figures


def test_the_math_is_typeset(crawl, server):
    attention = page_of(crawl, server, "notebooks/04_attention.html")
    assert attention.mathjax and attention.math >= 10, f"only {attention.math} typeset formulas on notebook 04"
    raw = ["$$", "\\(", "\\)", "\\[", "\\]", "\\frac", "\\begin{", "\\mathrm", "\\sqrt"]
    left = {p.url: [r for r in raw if r in p.text] for p in crawl.values()}
    left = {url: found for url, found in left.items() if found}
    assert not left, f"raw TeX on the page, not typeset: {left}"
    mathjax_urls = [u for p in crawl.values() for u in p.links if "mathjax" in u.lower() and not u.startswith(server)]
    assert not mathjax_urls, "MathJax should come with the site, not from another host"


def test_every_internal_link_resolves(crawl, server):
    broken = []
    checked = {}
    for page in crawl.values():
        for link in page.links:
            target, fragment = urllib.parse.urldefrag(link)
            if not target.startswith(server):
                continue
            if target not in checked:
                checked[target] = 200 if target in crawl and not crawl[target].errors else status(target)
            if checked[target] != 200:
                broken.append(f"{page.url} -> {link}: HTTP {checked[target]}")
            elif fragment and target in crawl and urllib.parse.unquote(fragment) not in crawl[target].ids:
                broken.append(f"{page.url} -> {link}: no such anchor")
    assert not broken, "\n".join(broken)
    assert len(checked) > len(NOTEBOOKS)


def test_every_notebook_page_offers_its_notebook_for_download(crawl, server):
    for nb in NOTEBOOKS:
        page = page_of(crawl, server, f"notebooks/{nb.stem}.html")
        downloads = [u for u in page.links if u.endswith(f"/{nb.name}")]
        assert downloads, f"no link to {nb.name} on its page"
        with urllib.request.urlopen(downloads[0], timeout=10) as response:
            assert response.read() == nb.read_bytes(), f"the {nb.name} offered is not the committed one"


def test_every_notebook_has_a_page_in_order_with_previous_and_next(browser, server):
    page = browser.new_page()
    try:
        page.goto(server + "index.html")
        toc = page.eval_on_selector_all(".bd-sidebar-primary a.reference.internal", "as => as.map(a => a.href)")
        chapters = [u for u in toc if "/notebooks/" in u]
        assert chapters == [f"{server}notebooks/{nb.stem}.html" for nb in NOTEBOOKS]
        page.goto(chapters[1])
        prev_url = page.get_attribute("a.left-prev", "href")
        next_url = page.get_attribute("a.right-next", "href")
        assert (prev_url, next_url) == (f"{NOTEBOOKS[0].stem}.html", f"{NOTEBOOKS[2].stem}.html")
        title = page.text_content("h1")
        assert title.startswith("2. "), title
    finally:
        page.close()


def test_search_finds_attention_rollout_in_notebook_08(browser, server):
    page = browser.new_page()
    try:
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(server + "index.html")
        page.locator("button.search-button-field:visible").first.click()  # opens the search dialog
        search = page.locator("input[name='q']:visible").first
        search.fill("rollout")
        search.press("Enter")
        page.wait_for_url("**/search.html?q=rollout*")
        page.get_by_text("Search finished").wait_for()
        hits = page.eval_on_selector_all("#search-results li a", "as => as.map(a => [a.href, a.innerText])")
    finally:
        page.close()
    pages = [url for url, _ in hits]
    assert f"{server}notebooks/08_attention_maps.html" in pages, hits


def test_the_api_reference_documents_every_module(crawl, server):
    api = page_of(crawl, server, "api.html")
    modules = sorted(p.stem for p in (REPO / "vit_tutorial").glob("*.py") if not p.stem.startswith("_"))
    missing = [m for m in modules if f"module-vit_tutorial.{m}" not in api.ids]
    assert not missing, f"not in the API reference: {missing}"
    for name in ("vit_tutorial.model.ViT", "vit_tutorial.training.fit", "vit_tutorial.inspect.attention_rollout"):
        assert name in api.ids, f"{name} has no entry in the API reference"


# ---------------------------------------------------------------- JupyterLab


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """JupyterLab on the notebooks, without a token, its state in a temporary folder; yields its URL."""
    pytest.importorskip("jupyterlab", reason="jupyterlab is not installed")
    home = tmp_path_factory.mktemp("jupyter")
    settings = home / "settings"
    # Every cell in the page (no windowing, so figures far down are drawn too), and no autosave.
    for plugin, values in {"notebook-extension/tracker": {"windowingMode": "none"},
                           "docmanager-extension/plugin": {"autosave": False},
                           "apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}.items():
        path = settings / "@jupyterlab" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"), IPYTHONDIR=str(home / "ipython"),
               JUPYTERLAB_SETTINGS_DIR=str(settings), JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"))
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    log = (home / "jupyterlab.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
         f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--ServerApp.token=", "--ServerApp.password=",
         "--ServerApp.open_browser=False", f"--ServerApp.root_dir={REPO / 'notebooks'}",
         f"--FileCheckpoints.checkpoint_dir={home / 'checkpoints'}",  # not .ipynb_checkpoints beside the notebook
         f"--LabApp.user_settings_dir={settings}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
         "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url=None"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=home)
    try:
        deadline = time.monotonic() + 60
        while status_or_none(url + "api/status") != 200:
            assert proc.poll() is None, "JupyterLab stopped:\n" + (home / "jupyterlab.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "JupyterLab did not answer within 60 s"
            time.sleep(0.5)
        yield url
    finally:
        shut_down_kernels(url)
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()


def status_or_none(url: str):
    try:
        return status(url)
    except OSError:
        return None


def shut_down_kernels(url: str) -> None:
    """Opening a notebook starts its kernel: stop each through the API, so that none outlives the server."""
    try:
        with urllib.request.urlopen(url + "api/kernels", timeout=10) as response:
            kernels = json.loads(response.read())
        for kernel in kernels:
            request = urllib.request.Request(f"{url}api/kernels/{kernel['id']}", method="DELETE")
            urllib.request.urlopen(request, timeout=30).close()
    except OSError:
        pass


def test_jupyterlab_renders_notebook_01(browser, jupyterlab):
    folder = REPO / "notebooks"
    notebook = folder / "01_patching.ipynb"
    before = (notebook.stat().st_mtime_ns, hashlib.sha256(notebook.read_bytes()).digest(), jupyter_traces(folder))
    page = browser.new_page()
    try:
        page.set_default_timeout(60_000)
        page.goto(jupyterlab + "lab/tree/01_patching.ipynb")
        page.wait_for_selector(".jp-Notebook .jp-Cell")
        page.wait_for_function("""() => [...document.querySelectorAll('.jp-RenderedImage img')]
                                          .some(img => img.naturalWidth > 0)""")
        cells = page.locator(".jp-Notebook .jp-Cell").count()
        images = page.eval_on_selector_all(".jp-RenderedImage img", "imgs => imgs.map(i => i.naturalWidth)")
        markdown = page.locator(".jp-MarkdownOutput h1").first.inner_text()
    finally:
        page.close()
    assert cells == len(json.loads(notebook.read_text())["cells"])
    assert len(images) == output_images(notebook) and all(w > 0 for w in images), images
    assert markdown.startswith("1. ")
    after = (notebook.stat().st_mtime_ns, hashlib.sha256(notebook.read_bytes()).digest(), jupyter_traces(folder))
    assert after == before, "opening notebook 01 in JupyterLab changed it or left files beside it"

