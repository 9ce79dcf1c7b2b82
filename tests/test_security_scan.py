"""Security (b): an AST scan of every ``.py`` file under pipeline/, flows/, scripts/ and benchmarks/
finds no shell, no pickle of outside files, no unsafe ``torch.load``/``np.load``/``yaml.load``, no
``eval``/``exec``; each finding names ``file:line``.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.security_support import REPO

SCANNED = ("pipeline", "flows", "scripts", "benchmarks")

# --------------------------------------------------------------------------- (b) AST scan

SHELL_CALLS = {"os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"}
PICKLE_CALLS = {
    "pickle.load",
    "pickle.loads",
    "pickle.Unpickler",
    "_pickle.load",
    "_pickle.loads",
    "dill.load",
    "dill.loads",
    "joblib.load",
    "pandas.read_pickle",
    "shelve.open",
}
YAML_UNSAFE = {"yaml.unsafe_load", "yaml.unsafe_load_all", "yaml.full_load", "yaml.full_load_all"}
YAML_SAFE_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}
ZARR_OPENS = {"zarr.open", "zarr.open_group", "zarr.open_array", "zarr.open_consolidated"}


class _Aliases(ast.NodeVisitor):
    """Local name → fully qualified name for every import in a module."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.names[alias.asname] = alias.name
            else:
                top = alias.name.split(".")[0]
                self.names[top] = top

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            self.names[alias.asname or alias.name] = (
                f"{node.module}.{alias.name}" if node.module else alias.name
            )


def _qualified(func: ast.expr, aliases: dict[str, str]) -> str | None:
    parts: list[str] = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return None
    parts.append(aliases.get(func.id, func.id))
    name = ".".join(reversed(parts))
    return name.replace("numpy.", "np.", 1) if name.startswith("numpy.") else name


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _is_const(node: ast.expr | None, value: object) -> bool:
    """True when ``node`` is the literal ``value`` (``is`` for booleans, so ``1`` is not ``True``)."""
    if not isinstance(node, ast.Constant):
        return False
    return node.value is value if isinstance(value, bool) else bool(node.value == value)


def _mode(call: ast.Call, position: int) -> ast.expr | None:
    given = _kw(call, "mode")
    if given is None and len(call.args) > position:
        given = call.args[position]
    return given


def _only_safe_loaders(expr: ast.expr) -> bool:
    """True when every loader ``expr`` can name is a safe one (``yaml.SafeLoader``, ``CSafeLoader``,
    ``getattr(yaml, "CSafeLoader", yaml.SafeLoader)``)."""
    allowed = YAML_SAFE_LOADERS | {"yaml", "getattr"}
    for node in ast.walk(expr):
        if isinstance(node, ast.Attribute) and node.attr not in allowed:
            return False
        if isinstance(node, ast.Name) and node.id not in allowed:
            return False
        if isinstance(node, ast.Constant) and node.value not in allowed:
            return False
    return True


def call_findings(name: str, call: ast.Call, constants: dict[str, ast.expr]) -> list[str]:
    """What is unsafe about one call whose function resolves to ``name`` (empty if nothing);
    ``constants`` are the module-level ``NAME = <expr>`` assignments."""
    found = []
    shell = _kw(call, "shell")
    if shell is not None and not _is_const(shell, False):
        found.append("shell=True (or a non-literal shell=)")
    if name in SHELL_CALLS:
        found.append(f"{name} runs a shell")
    if name in PICKLE_CALLS:
        found.append(f"{name} unpickles a file")
    if name == "torch.load" and not _is_const(_kw(call, "weights_only"), True):
        found.append("torch.load without weights_only=True")
    if name in ("np.load", "np.lib.format.read_array") and not (
        _kw(call, "allow_pickle") is None or _is_const(_kw(call, "allow_pickle"), False)
    ):
        found.append(f"{name} with allow_pickle")
    if name in YAML_UNSAFE:
        found.append(f"{name} constructs arbitrary objects")
    if name in ("yaml.load", "yaml.load_all"):
        loader = _kw(call, "Loader") or (call.args[1] if len(call.args) > 1 else None)
        if isinstance(loader, ast.Name) and loader.id in constants:
            loader = constants[loader.id]  # e.g. _SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        if loader is None or not _only_safe_loaders(loader):
            found.append(f"{name} without a safe Loader")
    if name in ("eval", "exec", "builtins.eval", "builtins.exec", "compile"):
        found.append(f"{name}() of a string")
    if name == "h5py.File" and not _is_const(_mode(call, 1), "r"):
        found.append("h5py.File opened in a mode other than 'r' (inputs are read-only)")
    if name in ZARR_OPENS:
        mode = _mode(call, 99)
        if not (_is_const(mode, "r") or _is_const(mode, "w")):
            found.append(f"{name} without a literal mode 'r' (read) or 'w' (a new store): may modify a store")
    return found


def scan_source(text: str, filename: str) -> list[str]:
    """``file:line: problem`` for every unsafe call in one module's source."""
    tree = ast.parse(text, filename=filename)
    aliases = _Aliases()
    aliases.visit(tree)
    constants = {
        node.targets[0].id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
    }
    constants.update(
        {
            node.target.id: node.value
            for node in tree.body
            if isinstance(node, ast.AnnAssign)
            and isinstance(node.target, ast.Name)
            and node.value is not None
        }
    )
    findings = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _qualified(node.func, aliases.names)
        if name is None:
            continue
        findings += [
            f"{filename}:{node.lineno}: {problem}" for problem in call_findings(name, node, constants)
        ]
    return findings


def scanned_files() -> list[Path]:
    files = []
    for top in SCANNED:
        for path in sorted((REPO / top).rglob("*.py")):
            parts = path.relative_to(REPO).parts
            if any(p.startswith(".") or p in ("__pycache__", "_work") for p in parts):
                continue  # generated benchmark data and caches, not project code
            files.append(path)
    return files


def test_the_scanner_flags_every_forbidden_pattern_with_file_and_line() -> None:
    bad = "\n".join(
        [
            "import os, pickle, subprocess as sp, torch, yaml",
            "import numpy as np",
            "from os import system as run",
            "sp.run('ls', shell=True)",
            "os.system('ls')",
            "run('ls')",
            "pickle.loads(b'')",
            "torch.load('x')",
            "torch.load('x', weights_only=False)",
            "np.load('x', allow_pickle=True)",
            "yaml.load('a: 1', Loader=yaml.Loader)",
            "yaml.load('a: 1')",
            "eval('1')",
            "exec('x = 1')",
            "import h5py, zarr",
            "h5py.File('x', 'a')",
            "zarr.open_group('x', mode='a')",
            "LOADER = yaml.UnsafeLoader",
            "yaml.load('a: 1', Loader=LOADER)",
        ]
    )
    findings = scan_source(bad, "bad.py")
    assert [int(f.split(":")[1]) for f in findings] == [*range(4, 15), 16, 17, 19]
    good = "\n".join(
        [
            "import subprocess, torch, yaml, h5py, zarr, numpy as np",
            "subprocess.run(['ls'], check=True, shell=False)",
            "torch.load('x', weights_only=True)",
            "np.load('x')",
            "yaml.safe_load('a: 1')",
            "yaml.load('a: 1', Loader=yaml.SafeLoader)",
            "model.eval()",
            "h5py.File('x', 'r')",
            "zarr.open_group('x', mode='r')",
            "SAFE: object = getattr(yaml, 'CSafeLoader', yaml.SafeLoader)",
            "yaml.load('a: 1', Loader=SAFE)",
        ]
    )
    assert scan_source(good, "good.py") == []


def test_no_shell_pickle_unsafe_load_or_eval_anywhere_in_the_project_code() -> None:
    files = scanned_files()
    assert REPO / "pipeline" / "training" / "checkpoint.py" in files and len(files) > 50
    findings = [
        f
        for path in files
        for f in scan_source(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))
    ]
    assert findings == [], "\n".join(findings)
