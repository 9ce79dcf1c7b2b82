"""`dvc plots show` pages render with no network: vega is inlined, headless Chromium draws every plot.

A throwaway git + DVC repo gets this repo's ``.dvc/config`` and ``.dvc/plots`` templates and the
plots block recommended for the pipeline (dvclive loss TSVs, long-format ROC/PR rows, confusion
rows, a PNG). The page DVC writes must name no external script, style or image, and Chromium with
every host unresolvable must draw a canvas in each vega div. Chromium is a system package: when it
is missing these tests fail and say how to install it, they never skip.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib.image import imread, imsave

from pipeline.evaluation.plots_data import confusion_rows, pr_rows, roc_rows
from tests.script_module import load_script

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / ".dvc" / "plots" / "offline_template.html"
DVC = Path(sys.executable).with_name("dvc")
CLASSES = ["NORM", "AF", "MI"]
RHYTHMS = ["NORM", "AF", "OTHER", "NOISY"]
WINDOW = (1400, 2400)
MIN_COLOURED_PIXELS = 5_000  # vega's lines, legends and heatmap; the test PNG is grey only

# The block recommended for dvc.yaml, for one model called "demo".
DVC_YAML = """\
plots:
  - demo loss:
      template: linear
      x: step
      y:
        dvclive/demo/plots/metrics/train_loss.tsv: train_loss
        dvclive/demo/plots/metrics/val_loss.tsv: val_loss
      title: "demo: loss per epoch"
      x_label: epoch
      y_label: loss
  - "demo: learning rate per epoch":
      template: linear
      x: step
      y:
        dvclive/demo/plots/metrics/lr.tsv: lr
      title: "demo: learning rate per epoch"
      x_label: epoch
      y_label: learning rate
  - eval/demo/plots/roc.json:
      template: curve_by_class
      x: fpr
      y: tpr
      title: "demo: ROC per class"
      x_label: false positive rate
      y_label: true positive rate
  - eval/demo/plots/pr.json:
      template: curve_by_class
      x: recall
      y: precision
      title: "demo: precision-recall per class"
  - demo confusion:
      template: confusion_counts
      x: predicted
      y:
        eval/demo/plots/confusion.json: actual
      title: "demo: confusion (rows = true class)"
      x_label: predicted
      y_label: true class
  - eval/demo/plots/ecg_strips.png
"""


shots = load_script("screenshot_plots")
vendor = load_script("vendor_vega")


class _ExternalRefs(HTMLParser):
    """Every src/href/srcset on a tag; script and style bodies are opaque text, as in a browser."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in {"src", "href", "srcset", "data"} and value:
                self.refs.append((tag, value))


def external_refs(html: str) -> list[tuple[str, str]]:
    """(tag, url) of references that would need the network."""
    parser = _ExternalRefs()
    parser.feed(html)
    return [(t, v) for t, v in parser.refs if re.match(r"\s*(https?:)?//", v, flags=re.IGNORECASE)]


def _run(cmd: list[str | Path], cwd: Path) -> str:
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _write_dvclive_tsv(path: Path, name: str, values: list[float]) -> None:
    """What the train stage's dvclive writes: ``step, <name>``, tab separated, step = epoch from 1."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"step\t{name}", *(f"{step}\t{v}" for step, v in enumerate(values, start=1))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _write_plot_data(repo: Path) -> None:
    rng = np.random.default_rng(7)
    steps = np.arange(25)
    live = repo / "dvclive" / "demo" / "plots" / "metrics"
    _write_dvclive_tsv(live / "train_loss.tsv", "train_loss", list(1.1 * np.exp(-steps / 7) + 0.1))
    _write_dvclive_tsv(live / "val_loss.tsv", "val_loss", list(1.2 * np.exp(-steps / 9) + 0.2))
    _write_dvclive_tsv(live / "lr.tsv", "lr", list(1e-3 * 0.5 ** (steps // 8)))

    plots = repo / "eval" / "demo" / "plots"
    plots.mkdir(parents=True)
    y = (rng.random((300, len(CLASSES))) < 0.3).astype(np.int64)
    scores = 0.6 * rng.random(y.shape) + 0.4 * y
    (plots / "roc.json").write_text(json.dumps(roc_rows(y, scores, CLASSES)), encoding="utf-8")
    (plots / "pr.json").write_text(json.dumps(pr_rows(y, scores, CLASSES)), encoding="utf-8")
    truth = rng.integers(0, len(RHYTHMS), 200)
    pred = np.where(rng.random(200) < 0.7, truth, rng.integers(0, len(RHYTHMS), 200))
    (plots / "confusion.json").write_text(json.dumps(confusion_rows(truth, pred, RHYTHMS)), encoding="utf-8")
    t = np.linspace(0.0, 4.0, 600)
    strip = np.abs(np.sin(np.pi * 1.2 * t)) ** 20  # grey ECG-like spikes: adds no coloured pixels
    imsave(plots / "ecg_strips.png", np.tile(strip, (80, 1)), cmap="gray_r")


@pytest.fixture(scope="module")
def plots_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``index.html`` written by ``dvc plots show`` in a throwaway repo configured like this one."""
    repo = tmp_path_factory.mktemp("plots_repo")
    _run(["git", "init", "-q"], repo)
    _run([DVC, "init", "-q"], repo)
    shutil.copy2(REPO / ".dvc" / "config", repo / ".dvc" / "config")
    shutil.copytree(REPO / ".dvc" / "plots", repo / ".dvc" / "plots", dirs_exist_ok=True)
    (repo / "dvc.yaml").write_text(DVC_YAML, encoding="utf-8")
    _write_plot_data(repo)
    _run([DVC, "plots", "show", "--out", "page"], repo)
    return repo / "page" / "index.html"


@pytest.fixture(scope="module")
def chromium() -> Path:
    if not shots.CHROMIUM.is_file():
        pytest.fail(f"headless Chromium is required here: {shots.CHROMIUM} is missing; {shots.INSTALL_HINT}")
    return Path(shots.CHROMIUM)


def _render(page: Path, png: Path) -> Any:
    """The parsed DOM of ``page`` after Chromium ran its scripts with the network blocked."""
    dom = shots.render(page, png, window=WINDOW)
    (png.with_suffix(".dom.html")).write_text(dom, encoding="utf-8")
    return shots.parse_dom(dom)


def test_committed_template_inlines_exactly_the_pinned_builds() -> None:
    text = TEMPLATE.read_text(encoding="utf-8")
    assert text.count("{plot_divs}") == 1 and text.count("{refresh_tag}") == 1
    assert "{scripts}" not in text, "DVC would put its CDN <script src> tags there"
    assert external_refs(text) == []
    bodies = re.findall(r"<script>\n/\*! .*?\*/\n(.*?)\n</script>", text, flags=re.DOTALL)
    assert len(bodies) == len(vendor.PACKAGES)
    for pkg, body in zip(vendor.PACKAGES, bodies, strict=True):
        digest = hashlib.sha256((body + "\n").encode("utf-8")).hexdigest()
        assert f"{pkg.name}@{pkg.version} " in text and pkg.integrity in text
        assert f"sha256 {digest}" in text, f"{pkg.name} body differs from what the header records"
    assert text.count("Redistribution and use in source and binary forms") == len(vendor.PACKAGES)


def test_dvc_plots_show_page_names_no_network_resource(plots_page: Path) -> None:
    html = plots_page.read_text(encoding="utf-8")
    assert external_refs(html) == []
    assert "cdn.jsdelivr.net" not in html
    assert "vega@5.33.1" in html, "dvc did not use .dvc/plots/offline_template.html"
    assert len(shots.vega_plot_ids(html)) == 5  # loss, learning rate, ROC, PR, confusion
    assert "demo: learning rate per epoch" in html and "demo: loss per epoch" in html  # titled by metric
    image_srcs = re.findall(r'<img src="(static/[^"]+)"', html)
    assert len(image_srcs) == 1 and (plots_page.parent / image_srcs[0]).is_file()


def test_every_plot_renders_in_chromium_with_network_blocked(
    plots_page: Path, chromium: Path, tmp_path: Path
) -> None:
    png = tmp_path / "plots.png"
    root = _render(plots_page, png)
    statuses = [shots.vega_status(root, pid) for pid in shots.vega_plot_ids(plots_page.read_text("utf-8"))]
    assert [s for s in statuses if not s.rendered] == []
    assert shots.page_errors(root) == []
    images = [e for e in root.walk() if e.tag == "img" and e.attrs.get("src", "").startswith("static/")]
    assert len(images) == 1

    rgb = imread(png)[..., :3]
    assert rgb.shape[:2] == (WINDOW[1], WINDOW[0])
    coloured = int(((rgb.max(axis=2) - rgb.min(axis=2)) > 0.25).sum())
    assert coloured > MIN_COLOURED_PIXELS, f"screenshot {png} looks blank: {coloured} coloured pixels"


def test_cdn_page_stays_blank_so_the_check_can_fail(plots_page: Path, chromium: Path, tmp_path: Path) -> None:
    """DVC's default page (vega from the CDN) under the same blocking: no plot may count as rendered."""
    page_html = importlib.import_module("dvc_render.html").PAGE_HTML  # untyped package: no mypy stubs
    default_template = tmp_path / "dvc_default.html"
    default_template.write_text(page_html, encoding="utf-8")
    repo = plots_page.parent.parent
    _run([DVC, "plots", "show", "--out", tmp_path / "cdn", "--html-template", default_template], repo)
    cdn_page = tmp_path / "cdn" / "index.html"
    assert "cdn.jsdelivr.net" in cdn_page.read_text(encoding="utf-8")
    root = _render(cdn_page, tmp_path / "cdn.png")
    statuses = [shots.vega_status(root, pid) for pid in shots.vega_plot_ids(cdn_page.read_text("utf-8"))]
    assert len(statuses) == 5 and not any(s.rendered for s in statuses)


def test_a_missing_image_is_reported_on_the_page(plots_page: Path, chromium: Path, tmp_path: Path) -> None:
    page = tmp_path / "index.html"
    shutil.copy2(plots_page, page)  # no static/ folder next to it: the <img> cannot load
    errors = shots.page_errors(_render(page, tmp_path / "broken.png"))
    assert len(errors) == 1 and "could not load <img>" in errors[0] and "ecg_strips.png" in errors[0]
