"""Every model-side DVC stage lists, in its deps, all the project code its command imports.

The import set of a stage is computed from the source: the module-level imports of ``pipeline/cli/main.py``
and of the CLI module that defines the stage's ``cmd_<name>`` (``pipeline/cli/models.py`` or
``pipeline/cli/parity.py``), the
imports inside that function and inside every module-level function of the same module it calls, and
from there the transitive closure of module-level imports. A new import that the stage's deps miss
(so that ``dvc repro`` would not re-run the stage when that code changes) fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PROJECT = ("pipeline", "flows")


def _module_file(name: str) -> Path | None:
    base = REPO / name.replace(".", "/")
    for p in (base.with_suffix(".py"), base / "__init__.py"):
        if p.is_file():
            return p
    return None


def _imports(nodes: list[ast.stmt] | list[ast.AST]) -> set[str]:
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PROJECT:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name.split(".")[0] in PROJECT)
    return out


def _closure(modules: set[str]) -> set[Path]:
    seen: set[str] = set()
    files: set[Path] = set()
    stack = list(modules)
    while stack:
        name = stack.pop()
        path = _module_file(name)
        if name in seen or path is None:
            continue
        seen.add(name)
        files.add(path.relative_to(REPO))
        parts = name.split(".")
        stack += [".".join(parts[:i]) for i in range(1, len(parts))]  # parent packages run first
        stack += sorted(_imports(list(ast.parse(path.read_text()).body)))
    return files


def _command_modules(command: str, module: str = "models") -> set[str]:
    tree = ast.parse((REPO / f"pipeline/cli/{module}.py").read_text())
    funcs = {f.name: f for f in tree.body if isinstance(f, ast.FunctionDef)}
    todo, done = [f"cmd_{command}"], set()
    found = {"pipeline.cli.main", f"pipeline.cli.{module}"}
    while todo:
        fn = funcs[todo.pop()]
        done.add(fn.name)
        found |= _imports(list(ast.walk(fn)))
        calls = {n.func.id for n in ast.walk(fn) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        todo += [c for c in calls if c in funcs and c not in done]
    return found


def _covered(path: Path, deps: list[str]) -> bool:
    return any(path == Path(d) or Path(d) in path.parents for d in deps)


STAGES = [(s, "models") for s in ("split", "train", "evaluate", "export")]
STAGES += [(s, "parity") for s in ("cexport", "parity")]


def stage_code_deps(stage: str, module: str) -> list[str]:
    """The project files a stage's command imports, sorted (``scripts/`` regenerates dvc.yaml's lists)."""
    return sorted(str(p) for p in _closure(_command_modules(stage, module)))


@pytest.mark.parametrize(("stage", "module"), STAGES)
def test_stage_deps_cover_every_project_module_its_command_imports(stage: str, module: str) -> None:
    spec = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"][stage]["do"]
    deps = [str(d) for d in spec["deps"] if not str(d).startswith("data/") and "${" not in str(d)]
    needed = _closure(_command_modules(stage, module))
    missing = sorted(str(p) for p in needed if not _covered(p, deps))
    assert not missing, f"dvc.yaml stage {stage!r} imports {missing} but does not list them in deps"
    assert f"pipeline/cli/{module}.py" in deps
