"""Render a ``dvc plots show`` page in headless Chromium with the network blocked; save PNG and DOM.

Usage: ``python scripts/screenshot_plots.py <page.html> <shot.png> [--dom PATH] [--window-size W,H]
[--budget-ms N] [--chromium PATH]``

Writes the screenshot to ``<shot.png>`` and the DOM after scripts ran to ``--dom`` (default: the PNG
path with suffix ``.dom.html``), then prints one line per vega plot found in the DOM and whether
it rendered. Exit status 0 only when every vega plot drew marks and the page reported no error
(``pre.dvc-plot-error``, written by the offline template's error hook).

Chromium gets no route out: every host name resolves to NOTFOUND, the proxy is a closed local
port, and background traffic (component updates, sync, QUIC) is off, so a page that still needs
a CDN renders blank here exactly as it would offline. ``--virtual-time-budget`` lets vega's
timers and animation frames run to completion before the snapshot without waiting in real time.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = "`make chromium` installs it (Debian package chromium, needs root or sudo)"
DEFAULT_WINDOW = (1280, 2000)
DEFAULT_BUDGET_MS = 10_000
TIMEOUT_S = 120
NETWORK_BLOCK_FLAGS = (
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
)
QUIET_FLAGS = (
    "--headless",
    "--no-sandbox",  # runs as root in CI containers, where the setuid sandbox is unavailable
    "--disable-gpu",
    "--disable-dev-shm-usage",  # docker's 64 MB /dev/shm crashes renderers on big pages
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--force-device-scale-factor=1",
    "--run-all-compositor-stages-before-draw",
)
VOID_TAGS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}
)
VEGA_CALL = re.compile(r"vegaEmbed\(\s*['\"]#([^'\"]+)['\"]")


class ChromiumMissingError(RuntimeError):
    """No Chromium binary where one is expected."""


@dataclass
class Element:
    """One element of the rendered DOM: tag, id, classes, attributes and its descendants."""

    tag: str
    attrs: dict[str, str]
    children: list[Element] = field(default_factory=list)
    text: list[str] = field(default_factory=list)

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def walk(self) -> list[Element]:
        """This element and all its descendants, document order."""
        out = [self]
        for child in self.children:
            out += child.walk()
        return out


class _TreeBuilder(HTMLParser):
    """Tolerant DOM tree from Chromium's serialised DOM (which is well formed, so a stack suffices)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self._stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self._stack[-1].children.append(element)
        if tag not in VOID_TAGS:
            self._stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._stack[-1].children.append(Element(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self._stack) - 1, 0, -1):
            if self._stack[depth].tag == tag:
                del self._stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self._stack[-1].text.append(data)


def parse_dom(html: str) -> Element:
    """The document as an ``Element`` tree."""
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


@dataclass(frozen=True)
class PlotStatus:
    """Whether one vega plot (the ``<div id>`` DVC made for it) drew its marks."""

    plot_id: str
    rendered: bool
    detail: str


def vega_plot_ids(html: str) -> list[str]:
    """Ids of the divs that DVC's page asks vega-embed to fill, in page order."""
    return VEGA_CALL.findall(html)


def vega_status(root: Element, plot_id: str) -> PlotStatus:
    """A plot rendered when its div became ``.vega-embed`` and holds a non-empty marks canvas or svg."""
    div = next((e for e in root.walk() if e.attrs.get("id") == plot_id), None)
    if div is None:
        return PlotStatus(plot_id, False, "div missing from the DOM")
    if "vega-embed" not in div.classes:
        return PlotStatus(plot_id, False, "vega-embed never ran on it")
    for e in div.walk():
        if e.tag in {"canvas", "svg"} and "marks" in e.classes:
            width = int(float(e.attrs.get("width", "0") or 0))
            if width > 0:
                return PlotStatus(plot_id, True, f"{e.tag} {e.attrs.get('width')}x{e.attrs.get('height')}")
    return PlotStatus(plot_id, False, "no canvas/svg with class marks")


def page_errors(root: Element) -> list[str]:
    """Messages the offline template's error hook wrote into the page."""
    return ["".join(e.text).strip() for e in root.walk() if "dvc-plot-error" in e.classes]


def chromium_command(
    chromium: Path, url: str, png: Path, profile_dir: Path, window: tuple[int, int], budget_ms: int
) -> list[str]:
    """Argument vector for one headless run that writes ``png`` and prints the DOM to stdout."""
    return [
        str(chromium),
        *QUIET_FLAGS,
        *NETWORK_BLOCK_FLAGS,
        f"--user-data-dir={profile_dir}",
        f"--window-size={window[0]},{window[1]}",
        f"--virtual-time-budget={budget_ms}",
        f"--screenshot={png}",
        "--dump-dom",
        url,
    ]


def render(
    html: Path,
    png: Path,
    window: tuple[int, int] = DEFAULT_WINDOW,
    budget_ms: int = DEFAULT_BUDGET_MS,
    chromium: Path = CHROMIUM,
) -> str:
    """Screenshot ``html`` into ``png`` with the network blocked; return the DOM after scripts ran."""
    if not chromium.is_file():
        raise ChromiumMissingError(f"{chromium} not found: {INSTALL_HINT}")
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    # A fresh profile per run: no cache, cookies or service workers carried over from other runs.
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        cmd = chromium_command(
            chromium, html.resolve().as_uri(), png.resolve(), Path(profile), window, budget_ms
        )
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    if proc.returncode != 0 or not png.is_file():
        raise RuntimeError(f"chromium exited {proc.returncode}, screenshot missing: {proc.stderr[-2000:]}")
    return proc.stdout


def parse_window(text: str) -> tuple[int, int]:
    width, height = (int(v) for v in text.split(","))
    return width, height


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("html", type=Path, help="page written by `dvc plots show`")
    parser.add_argument("png", type=Path, help="screenshot to write")
    parser.add_argument("--dom", type=Path, help="where to write the DOM (default: <png>.dom.html)")
    parser.add_argument("--window-size", type=parse_window, default=DEFAULT_WINDOW, help="W,H in CSS px")
    parser.add_argument("--budget-ms", type=int, default=DEFAULT_BUDGET_MS, help="virtual time for scripts")
    parser.add_argument("--chromium", type=Path, default=CHROMIUM)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    html_path: Path = args.html
    png: Path = args.png
    dom_path: Path = args.dom or png.with_suffix(".dom.html")
    try:
        dom = render(html_path, png, args.window_size, args.budget_ms, args.chromium)
    except ChromiumMissingError as exc:
        print(exc, file=sys.stderr)
        return 2
    dom_path.write_text(dom, encoding="utf-8")
    root = parse_dom(dom)
    statuses = [vega_status(root, pid) for pid in vega_plot_ids(html_path.read_text(encoding="utf-8"))]
    for s in statuses:
        print(f"{'ok  ' if s.rendered else 'FAIL'} {s.plot_id}: {s.detail}")
    errors = page_errors(root)
    for message in errors:
        print(f"page error: {message}")
    print(f"screenshot {png}, DOM {dom_path}")
    return 0 if all(s.rendered for s in statuses) and not errors else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
