"""Build ``.dvc/plots/offline_template.html``: DVC's plots page with vega inlined, so it renders offline.

Usage: ``.venv/bin/python scripts/vendor_vega.py [--out PATH] [--tarballs DIR] [--check]``

DVC's default page (``dvc_render.html.PAGE_HTML``) loads vega, vega-lite and vega-embed from
cdn.jsdelivr.net through its scripts placeholder; with no network the page stays blank. This
script writes a template that mirrors ``PAGE_HTML`` (same ``{refresh_tag}`` and ``{plot_divs}``
placeholders, same table style) but leaves the scripts placeholder out, so DVC has nowhere to put
its CDN tags, and inlines the pinned minified UMD builds (with their BSD-3-Clause licences) instead.

Pinning: each tarball's sha512 ``integrity`` (npm's Subresource-Integrity string) is written in
``PACKAGES`` below. The script checks that the registry's metadata still states that value and that
the downloaded bytes hash to it, so a changed upload or a wrong pin stops the build. With
``--tarballs DIR`` it reads ``<name>-<version>.tgz`` from DIR instead (no network; same checks on
the bytes). ``--check`` builds in memory and exits 1 if the file on disk differs (the output is
deterministic: no timestamps).

To move to newer versions: change ``version`` and ``integrity`` (from
``https://registry.npmjs.org/<name>/<version>``, field ``dist.integrity``), rerun, and look at a
page rendered with ``scripts/screenshot_plots.py``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import re
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REGISTRY = "https://registry.npmjs.org"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / ".dvc" / "plots" / "offline_template.html"
COMMAND = ".venv/bin/python scripts/vendor_vega.py"
HTTP_TIMEOUT_S = 60


@dataclass(frozen=True)
class Package:
    """One npm package whose minified browser build is inlined."""

    name: str
    version: str
    integrity: str  # npm dist.integrity of the tarball: "sha512-<base64>"
    build: str  # member of the tarball that is inlined
    global_name: str  # what the UMD build defines on window

    @property
    def tarball_name(self) -> str:
        return f"{self.name}-{self.version}.tgz"

    @property
    def tarball_url(self) -> str:
        return f"{REGISTRY}/{self.name}/-/{self.tarball_name}"


# vega 5 / vega-lite 5 / vega-embed 6: the majors DVC's renderer loads (its CDN tags name vega@5.20.2,
# vega-lite@5.2.0, vega-embed@6.18.2 and its specs use the vega-lite v5 schema). The newest release of
# each major is pinned, for the expression-sandbox security fixes made since DVC's versions. vega 6 and
# vega-embed 7 ship ES modules only, with no UMD build to inline.
PACKAGES = (
    Package(
        name="vega",
        version="5.33.1",
        integrity="sha512-1fArfVDUqVbb5z8n+/nVQb+VNBzx8svY6CrsyTK4Ujm4yrd9I1auoKxBAPXLCavY1LcrbHUskQbGUP8gXOzyQw==",
        build="package/build/vega.min.js",
        global_name="vega",
    ),
    Package(
        name="vega-lite",
        version="5.23.0",
        integrity="sha512-l4J6+AWE3DIjvovEoHl2LdtCUkfm4zs8Xxx7INwZEAv+XVb6kR6vIN1gt3t2gN2gs/y4DYTs/RPoTeYAuEg6mA==",
        build="package/build/vega-lite.min.js",
        global_name="vegaLite",
    ),
    Package(
        name="vega-embed",
        version="6.29.0",
        integrity="sha512-PmlshTLtLFLgWtF/b23T1OwX53AugJ9RZ3qPE2c01VFAbgt3/GSNI/etzA/GzdrkceXFma+FDHNXUppKuM0U6Q==",
        build="package/build/vega-embed.min.js",
        global_name="vegaEmbed",
    ),
)

LICENSE_MEMBER = "package/LICENSE"

# The vega npm tarball ships no LICENSE file (vega-lite's and vega-embed's do). This is the
# repository's LICENSE (github.com/vega/vega, file LICENSE), which covers every package of the
# vega monorepo bundled into build/vega.min.js.
VEGA_LICENSE = """\
Copyright (c) 2015-2023, University of Washington Interactive Data Lab
All rights reserved.

Redistribution and use in source and binary forms, with or without
modification, are permitted provided that the following conditions are met:

1. Redistributions of source code must retain the above copyright notice, this
   list of conditions and the following disclaimer.

2. Redistributions in binary form must reproduce the above copyright notice,
   this list of conditions and the following disclaimer in the documentation
   and/or other materials provided with the distribution.

3. Neither the name of the copyright holder nor the names of its contributors
  may be used to endorse or promote products derived from this software
  without specific prior written permission.

THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE ARE
DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT OWNER OR CONTRIBUTORS BE LIABLE
FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR CONSEQUENTIAL
DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF SUBSTITUTE GOODS OR
SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS INTERRUPTION) HOWEVER
CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY,
OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE
OF THIS SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
"""

BUNDLED_NOTE = {
    "vega": "Also bundles d3-* modules, d3-delaunay/delaunator and topojson-client (ISC licences).",
    "vega-lite": "",
    "vega-embed": (
        "Also bundles vega-themes, vega-tooltip, vega-interpreter, vega-schema-url-parser (BSD-3-Clause),\n"
        "fast-json-patch, json-stringify-pretty-compact (MIT), semver (ISC) and tslib (0BSD)."
    ),
}

# dvc_render.html.HTML replaces these literally anywhere in the file, inline JavaScript included.
PLACEHOLDERS_ONCE = ("{refresh_tag}", "{plot_divs}")
FORBIDDEN_PLACEHOLDER = "{scripts}"  # where DVC would put its CDN <script src> tags

# Shows a failed plot or image on the page instead of a silent gap (vega-embed only rejects a
# promise nobody awaits), and gives scripts/screenshot_plots.py something to find in the DOM.
ERROR_HOOK_JS = """\
(function () {
  function report(text) {
    var box = document.createElement("pre");
    box.className = "dvc-plot-error";
    box.style.cssText = "color:#b00020;white-space:pre-wrap;border:1px solid #b00020;padding:4px;";
    box.textContent = "Plot error: " + text;
    (document.body || document.documentElement).appendChild(box);
  }
  window.addEventListener("error", function (e) {
    var el = e.target;
    if (el && el !== window && el.tagName) {
      report("could not load <" + el.tagName.toLowerCase() + "> " + (el.src || el.href || ""));
    } else {
      report(String(e.message));
    }
  }, true);
  window.addEventListener("unhandledrejection", function (e) {
    report(String(e.reason && e.reason.stack ? e.reason.stack : e.reason));
  });
})();
"""

PAGE_HEAD = """\
<html>
<head>
    <meta charset="utf-8">
    {refresh_tag}
    <title>DVC Plot</title>
"""

PAGE_TAIL = """\
    <style>
        table {
            border-spacing: 15px;
        }
        .vega-embed {
            margin: 8px;
        }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


def fetch(url: str) -> bytes:
    """GET ``url`` (the npm registry only) and return the body."""
    if not url.startswith(REGISTRY + "/"):
        raise ValueError(f"refusing to fetch {url}: only {REGISTRY} is expected")
    with urllib.request.urlopen(
        url, timeout=HTTP_TIMEOUT_S
    ) as response:  # https, registry host checked above
        body: bytes = response.read()
    return body


def sri_sha512(data: bytes) -> str:
    """Subresource-Integrity string of ``data``, the form npm uses in ``dist.integrity``."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode("ascii")


def check_registry_pin(pkg: Package) -> None:
    """Stop if the registry's metadata for ``pkg`` no longer states the pinned integrity and URL."""
    meta = json.loads(fetch(f"{REGISTRY}/{pkg.name}/{pkg.version}"))
    dist = meta.get("dist", {})
    if dist.get("integrity") != pkg.integrity:
        raise SystemExit(
            f"{pkg.name}@{pkg.version}: registry integrity {dist.get('integrity')!r} "
            f"differs from the pin {pkg.integrity!r}"
        )
    if dist.get("tarball") != pkg.tarball_url:
        raise SystemExit(f"{pkg.name}@{pkg.version}: registry tarball URL is {dist.get('tarball')!r}")


def load_tarball(pkg: Package, tarball_dir: Path | None) -> bytes:
    """The pinned tarball's bytes, from ``tarball_dir`` or the registry, checked against the pin."""
    if tarball_dir is None:
        check_registry_pin(pkg)
        data = fetch(pkg.tarball_url)
    else:
        data = (tarball_dir / pkg.tarball_name).read_bytes()
    actual = sri_sha512(data)
    if actual != pkg.integrity:
        raise SystemExit(f"{pkg.tarball_name}: sha512 is {actual}, pinned {pkg.integrity}")
    return data


def read_member(tarball: bytes, member: str) -> str:
    """UTF-8 text of ``member`` in a gzip tarball; nothing is written to disk."""
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        handle = tar.extractfile(member)
        if handle is None:
            raise SystemExit(f"{member} is not a regular file in the tarball")
        return handle.read().decode("utf-8")


def check_inlinable(label: str, text: str) -> None:
    """Stop if ``text`` cannot sit inside an inline ``<script>`` or would be touched by DVC's filler.

    ``</script`` would end the element early and ``<!--`` switches the HTML parser into the
    escaped script state; rewriting either inside minified code is not safe to do blindly.
    """
    lowered = text.lower()
    for bad in ("</script", "<!--"):
        if bad in lowered:
            raise SystemExit(f"{label} contains {bad!r}: it cannot be inlined as is")
    for placeholder in (*PLACEHOLDERS_ONCE, FORBIDDEN_PLACEHOLDER):
        if placeholder in text:
            raise SystemExit(f"{label} contains the DVC placeholder {placeholder}")
    if "*/" in text and label.endswith("licence"):
        raise SystemExit(f"{label} contains '*/' and would end its comment early")


def script_block(pkg: Package, js: str, licence: str) -> str:
    """One inline ``<script>``: a ``/*!`` licence comment (kept by minifiers), then the build."""
    check_inlinable(f"{pkg.name} licence", licence)
    check_inlinable(f"{pkg.name} {pkg.build}", js)
    note = BUNDLED_NOTE[pkg.name]
    header = f"/*! {pkg.name} {pkg.version} ({pkg.build.removeprefix('package/')}), BSD-3-Clause.\n\n"
    header += licence.rstrip() + "\n" + (f"\n{note}\n" if note else "") + "*/\n"
    return f"    <script>\n{header}{js.rstrip()}\n</script>\n"


def provenance_comment(rows: list[tuple[Package, str]]) -> str:
    """HTML comment naming the generator, each package's pin and the sha256 of what was inlined."""
    lines = [
        "<!--",
        "  Offline page template for `dvc plots show` (config: plots.html_template).",
        f"  Generated by: {COMMAND}   (do not edit by hand; rerun it)",
        "  It mirrors dvc_render's default page but inlines vega instead of loading it from a CDN,",
        "  so it deliberately has no placeholder for DVC's <script src> tags.",
        "  Inlined, in order (npm tarball, its sha512 integrity, sha256 of the inlined file):",
    ]
    for pkg, js in rows:
        lines += [
            f"    {pkg.name}@{pkg.version} {pkg.build.removeprefix('package/')} -> window.{pkg.global_name}",
            f"      {pkg.tarball_url}",
            f"      integrity {pkg.integrity}",
            f"      sha256 {hashlib.sha256(js.encode('utf-8')).hexdigest()}",
        ]
    lines += ["  Licences: BSD-3-Clause, full text at the top of each script below.", "-->"]
    return "\n".join(lines) + "\n"


def build_template(tarball_dir: Path | None = None) -> str:
    """The whole template text, from the pinned tarballs."""
    rows: list[tuple[Package, str]] = []
    blocks: list[str] = []
    for pkg in PACKAGES:
        tarball = load_tarball(pkg, tarball_dir)
        js = read_member(tarball, pkg.build)
        licence = VEGA_LICENSE if pkg.name == "vega" else read_member(tarball, LICENSE_MEMBER)
        rows.append((pkg, js))
        blocks.append(script_block(pkg, js, licence))
    hook = f"    <script>\n{ERROR_HOOK_JS}</script>\n"
    text = "<!DOCTYPE html>\n" + provenance_comment(rows) + PAGE_HEAD + hook + "".join(blocks) + PAGE_TAIL
    check_placeholders(text)
    return text


def check_placeholders(text: str) -> None:
    """DVC fills every literal placeholder: each wanted one must occur once, the CDN one never."""
    for placeholder in PLACEHOLDERS_ONCE:
        count = text.count(placeholder)
        if count != 1:
            raise SystemExit(f"template has {placeholder} {count} times, expected once")
    if FORBIDDEN_PLACEHOLDER in text:
        raise SystemExit(f"template must not contain {FORBIDDEN_PLACEHOLDER}: DVC would add CDN tags")
    external = re.findall(r"<(?:script|link)\b[^>]*\b(?:src|href)\s*=", text, flags=re.IGNORECASE)
    if external:
        raise SystemExit(f"template loads external resources: {external}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="template to write")
    parser.add_argument("--tarballs", type=Path, help="read <name>-<version>.tgz from here, no network")
    parser.add_argument("--check", action="store_true", help="exit 1 if --out differs from a fresh build")
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    text = build_template(args.tarballs)
    out: Path = args.out
    if args.check:
        same = out.is_file() and out.read_text(encoding="utf-8") == text
        print(f"{out}: {'up to date' if same else 'DIFFERS from a fresh build'}")
        return 0 if same else 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out} ({len(text.encode('utf-8'))} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
