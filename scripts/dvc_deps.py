"""The code deps of each DVC stage: exactly the project modules its ``ecgpipe`` command imports.

``python scripts/dvc_deps.py`` rewrites the ``pipeline/``/``flows/`` entries of every stage's ``deps:``
in dvc.yaml (other deps, comments and order stay); ``--check`` only reports differences (exit 1).
tests/test_dvc_deps.py checks dvc.yaml against the same :func:`stage_code_deps`.

What a command imports, read from the source (nothing is imported but the command table):
the module-level imports of the entry modules (``flows.cli``, ``pipeline.cli.main``) and of the
command's module; the imports inside ``pipeline.cli.main``'s functions (they run for every command);
the imports inside the command's ``cmd_<name>``, its ``add_arguments`` and every module-level function
of the same module they call; from there the transitive closure of module-level imports, parent
packages included. Imports inside other functions are not followed: a library module that imports
lazily must say so where dvc.yaml's deps are generated (here, :data:`LAZY`): today
``pipeline.sources.registry``, whose reader table names each reader module as a string.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
PROJECT = ("pipeline", "flows")
ENTRY = ("flows.cli", "pipeline.cli.main")
CODE_DEP = re.compile(r"^(\s*)- (pipeline|flows)/\S+$")


def _module_file(name: str) -> Path | None:
    """The module's source: ``.py``, a package's ``__init__.py``, or the C source of a compiled
    extension (``pipeline/signal/_lanes.c``: its code computes stage outputs like any module's)."""
    base = REPO / name.replace(".", "/")
    for p in (base.with_suffix(".py"), base / "__init__.py", base.with_suffix(".c")):
        if p.is_file():
            return p
    return None


def _tree(module: str) -> ast.Module:
    path = _module_file(module)
    assert path is not None, module
    return ast.parse(path.read_text(encoding="utf-8"))


def _imports(nodes: Sequence[ast.AST]) -> set[str]:
    """Project modules (and ``module.name`` candidates for ``from module import name``) in ``nodes``,
    leaving out imports under ``if TYPE_CHECKING:``, which never run."""
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PROJECT:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] in PROJECT)
    return out


def _walk_imports(fn: ast.AST) -> set[str]:
    return _imports([n for n in ast.walk(fn) if isinstance(n, (ast.Import, ast.ImportFrom))])


# Modules that import others by name at run time (importlib): the module names are read from the string
# constants of the module's source that start with the given prefix.
LAZY = {"pipeline.sources.registry": "pipeline.sources."}


def lazy_imports(name: str) -> set[str]:
    """The modules ``name`` imports with importlib (see :data:`LAZY`); empty for every other module."""
    prefix = LAZY.get(name)
    if prefix is None:
        return set()
    consts = (
        n.value for n in ast.walk(_tree(name)) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    )
    return {c for c in consts if c.startswith(prefix) and _module_file(c) is not None}


def closure(modules: set[str]) -> set[Path]:
    """Files of ``modules`` and of everything they import at module level, parent packages included."""
    seen: set[str] = set()
    files: set[Path] = set()
    stack = sorted(modules)
    while stack:
        name = stack.pop()
        path = _module_file(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        files.add(path.relative_to(REPO))
        parts = name.split(".")
        stack += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run first
        if path.suffix == ".py":  # a C extension imports no project module
            stack += sorted(_imports(list(_tree(name).body)) | lazy_imports(name))
    return files


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}


def command_imports(command: str, module: str) -> set[str]:
    """The modules command ``command`` (defined in ``module``) imports, before the closure."""
    found = set(ENTRY) | {module}
    found |= {m for fn in _functions(_tree("pipeline.cli.main")).values() for m in _walk_imports(fn)}
    funcs = _functions(_tree(module))
    todo, done = [f"cmd_{command.replace('-', '_')}", "add_arguments"], set()
    while todo:
        fn = funcs[todo.pop()]
        done.add(fn.name)
        found |= _walk_imports(fn)
        calls = {n.func.id for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        todo += [c for c in calls if c in funcs and c not in done]
    return found


def command_module(command: str) -> str:
    """The module implementing ``command``, from the CLI's own table (a light, stdlib-only import)."""
    sys.path.insert(0, str(REPO))
    from flows.cli import all_commands

    return all_commands()[command].module


def stage_command(spec: dict[str, object]) -> str | None:
    """``ecgpipe <command> ...`` → ``<command>``; None for a stage that runs something else."""
    body = spec.get("do", spec)
    assert isinstance(body, dict)
    words = str(body["cmd"]).split()
    return words[1] if words[0] == "ecgpipe" else None


def stage_code_deps(command: str) -> list[str]:
    """The project files ``ecgpipe <command>`` imports, sorted as dvc.yaml lists them."""
    return sorted(str(p) for p in closure(command_imports(command, command_module(command))))


def _rewrite_stage(lines: list[str], start: int, end: int, deps: list[str]) -> list[str]:
    """Replace the code entries of the ``deps:`` list in ``lines[start:end]`` (one stage) by ``deps``."""
    block = lines[start:end]
    at = next(i for i, line in enumerate(block) if line.strip() == "deps:")
    items = at + 1
    while items < len(block) and block[items].lstrip().startswith("- "):
        items += 1
    entries = block[at + 1 : items]
    indent = entries[0][: len(entries[0]) - len(entries[0].lstrip())] if entries else " " * 6
    kept = [e for e in entries if not CODE_DEP.match(e)]
    code = [f"{indent}- {d}" for d in deps]
    return [*block[: at + 1], *kept, *code, *block[items:]]


def rewrite(text: str) -> str:
    """dvc.yaml with every ``ecgpipe`` stage's code deps regenerated."""
    stages = yaml.safe_load(text)["stages"]
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if re.match(r"^  [A-Za-z_]\w*:$", line)]
    ends = [*starts[1:], next(i for i, line in enumerate(lines) if line.startswith("plots:"))]
    out = lines[: starts[0]]
    for start, end in zip(starts, ends, strict=True):
        name = lines[start].strip().rstrip(":")
        command = stage_command(stages[name])
        block = lines[start:end]
        out += _rewrite_stage(lines, start, end, stage_code_deps(command)) if command else block
    return "\n".join([*out, *lines[ends[-1] :]])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="report whether dvc.yaml is current; write nothing")
    args = ap.parse_args()
    path = REPO / "dvc.yaml"
    text = path.read_text(encoding="utf-8")
    new = rewrite(text)
    if args.check:
        print("dvc.yaml code deps are current" if new == text else "dvc.yaml code deps are stale")
        return 0 if new == text else 1
    path.write_text(new, encoding="utf-8")
    print("dvc.yaml code deps rewritten" if new != text else "dvc.yaml code deps already current")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
