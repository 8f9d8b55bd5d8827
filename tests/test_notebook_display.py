"""What a reader sees of the smoke pipeline: inline figures, HTML results, a paper whose figures load."""

from __future__ import annotations

import html.parser
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from PIL import Image

pytestmark = pytest.mark.notebook


def _outputs(nb_path: Path):
    nb = nbformat.read(str(nb_path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            yield cell, cell.get("outputs", [])


def test_notebooks_that_save_figures_show_them_inline(smoke_pipeline):
    for run in smoke_pipeline.runs:
        saved = list((run.notebook.parent / run.name).rglob("*.png"))
        inline = sum("image/png" in o.get("data", {}) for _, outs in _outputs(run.notebook) for o in outs)
        if saved:
            assert inline > 0, f"{run.name} saves {len(saved)} figure(s) but shows none inline"


def test_no_stray_reprs_and_results_display_as_html(smoke_pipeline):
    for run in smoke_pipeline.runs:
        for cell, outs in _outputs(run.notebook):
            for o in outs:
                text = str(o.get("data", {}).get("text/plain", "")) + str(o.get("text", ""))
                assert "<bound method" not in text, f"{run.name}: a method shown instead of called:\n{cell.source}"
                shown_as_image = "image/png" in o.get("data", {})
                assert shown_as_image or "<Figure size" not in text, \
                    f"{run.name}: a figure shown as text only:\n{cell.source}"
        source = "\n".join(c.source for c, _ in _outputs(run.notebook))
        assert 'matplotlib.use("Agg")' not in source, f"{run.name} forces a non-interactive backend"


class _Images(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.srcs: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.srcs.append(dict(attrs).get("src", ""))


@pytest.fixture(scope="module")
def paper(smoke_pipeline, tmp_path_factory):
    from ojpanel.report.paper import render_paper

    return render_paper(smoke_pipeline.summary_path, tmp_path_factory.mktemp("paper"))


def test_every_figure_of_the_paper_loads(paper):
    parser = _Images()
    parser.feed(paper["html"].read_text(encoding="utf-8"))
    assert parser.srcs, "the paper shows no figure"
    for src in parser.srcs:
        path = paper["html"].parent / src
        assert path.is_file(), f"the paper's HTML points to a missing figure: {src}"
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            assert min(im.size) > 100, f"{src} is {im.size} pixels"


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium is not installed (apt-get install chromium)")
def test_paper_renders_in_a_headless_browser_with_every_image_loaded(paper, tmp_path):
    # A page script marks the document once every image has loaded with a real size; the
    # browser's DOM dump must carry that mark and no broken image.
    page = paper["html"]
    probe = page.with_name("paper_probe.html")
    probe.write_text(
        page.read_text(encoding="utf-8")
        + "<script>window.addEventListener('load', () => { const imgs = [...document.images];"
        " const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src);"
        " document.body.setAttribute('data-images', imgs.length);"
        " document.body.setAttribute('data-broken', bad.join(' ')); });</script>",
        encoding="utf-8",
    )
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=5000"]
    dom = subprocess.run([_chromium(), *flags, "--dump-dom", probe.as_uri()], capture_output=True,
                         text=True, timeout=120, check=True).stdout
    shot = tmp_path / "paper.png"
    subprocess.run([_chromium(), *flags, f"--screenshot={shot}", "--window-size=1200,2000", probe.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert 'data-broken=""' in dom, "images that did not load: " + dom.split('data-broken="')[1].split('"')[0]
    assert 'data-images="0"' not in dom and "data-images=" in dom
    assert shot.is_file() and shot.stat().st_size > 10_000
