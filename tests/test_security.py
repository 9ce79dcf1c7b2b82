"""Security: safe checkpoint loading, no dangerous calls in the code, confined paths, read-only inputs.

(a) A checkpoint whose pickle would run code is refused by ``load_checkpoint`` and by every CLI
    command that loads a model, and the code never runs (its marker file is never written).
(b) An AST scan of every ``.py`` file under pipeline/, flows/, scripts/ and benchmarks/ finds no
    shell, no pickle of outside files, no unsafe ``torch.load``/``np.load``/``yaml.load``, no
    ``eval``/``exec``; each finding names ``file:line``.
(c) Paths read from CSVs and headers (PTB-XL ``filename_lr``, CODE ``trace_file``/``wfdb_csv``,
    CinC 2017 ``REFERENCE.csv`` names, WFDB ``RECORDS``) that escape the source root (``../``,
    absolute paths, symbolic links pointing outside) are rejected with a reason, and no file
    outside the root is opened. "Opened" is observed with a Python audit hook on ``open`` (every
    ``open``/``os.open``/``Path.read_*`` in-process) plus a spy on ``h5py.File`` (HDF5 opens files in C).
(d) HDF5 and zarr inputs are opened read-only and their bytes do not change.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import hashlib
import os
import pickle
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import torch
import zarr

from pipeline.cli.main import main
from pipeline.core.records import Discovery, Provenance, ReadError, Record, Rejection
from pipeline.ingest.batch import run_batch
from pipeline.ingest.plan import plan_ingest
from pipeline.signal.preprocess import SignalPlan
from pipeline.sources.base import SourceReader
from pipeline.sources.cinc2017 import Cinc2017Reader
from pipeline.sources.code import LABEL_COLUMNS, CodeReader
from pipeline.sources.ptbxl import PtbXlReader
from pipeline.sources.wfdb_folder import WfdbFolderReader
from pipeline.store.local import ShardStore, StorageSpec
from pipeline.store.manifest import Manifest
from pipeline.training.checkpoint import CHECKPOINT_FORMAT, CheckpointError, load_checkpoint

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SCANNED = ("pipeline", "flows", "scripts", "benchmarks")

# --------------------------------------------------------------------------- observing opens

_RECORDERS: list[list[tuple[str, object, object]]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _RECORDERS and isinstance(args[0], str | bytes | os.PathLike):
        path = os.fsdecode(args[0])
        for recorder in _RECORDERS:
            recorder.append((os.path.realpath(path), args[1], args[2]))


# Audit hooks cannot be removed; this one only appends while a recorder is active.
sys.addaudithook(_audit)


@contextmanager
def recorded_opens(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, object, object]]]:
    """(real path, mode, flags) of every file opened in this process inside the block, HDF5 included."""
    opened: list[tuple[str, object, object]] = []
    real_file = h5py.File

    def spy(name: Any, mode: str = "r", *args: Any, **kwargs: Any) -> h5py.File:
        if isinstance(name, str | os.PathLike):
            opened.append((os.path.realpath(os.fspath(name)), f"h5py:{mode}", None))
        return real_file(name, mode, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", spy)
    _RECORDERS.append(opened)
    try:
        yield opened
    finally:
        _RECORDERS.remove(opened)
        monkeypatch.setattr(h5py, "File", real_file)


def opened_under(opened: list[tuple[str, object, object]], folder: Path) -> list[str]:
    base = os.path.realpath(folder) + os.sep
    return sorted({path for path, _, _ in opened if path.startswith(base)})


def read_all(reader: SourceReader, disc: Discovery) -> tuple[list[Record], dict[str, str]]:
    """Records of every unit, and unit key → ReadError/Rejection reason for the rest."""
    records: list[Record] = []
    reasons: dict[str, str] = {}
    for unit in disc.units:
        prov = Provenance(files=tuple((f, "0" * 64) for f in unit.files), reader=reader.reader_id)
        try:
            for item in reader.read(unit, prov):
                if isinstance(item, Rejection):
                    reasons[item.item] = item.reason
                else:
                    records.append(item)
        except ReadError as exc:
            reasons[unit.key] = str(exc)
    return records, reasons


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path → sha256 of every file under ``root``; empty folders appear as ``<dir>``."""
    out: dict[str, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file():
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir() and not any(path.iterdir()):
            out[rel] = "<dir>"
    return out


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """(source root, a sibling folder outside it) under tmp_path."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    return root, outside


# --------------------------------------------------------------------------- (a) checkpoints


class _RunsCode:
    """Pickles as ``os.system(<command>)``: unpickling it without ``weights_only`` runs a shell."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Callable[[str], int], tuple[str]]:
        return os.system, (self.command,)


def _evil_checkpoint(path: Path, marker: Path, style: str) -> Path:
    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": 1,
        "model": {},
        "card": _RunsCode(f"echo pwned > '{marker}'"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    if style == "torch":
        torch.save(payload, path)
    else:  # a plain (legacy) pickle file, as someone might hand over from outside the pipeline
        path.write_bytes(pickle.dumps(payload, protocol=2))
    return path


@pytest.mark.parametrize("style", ["torch", "pickle"])
def test_the_payload_really_runs_code_when_loaded_unsafely(tmp_path: Path, style: str) -> None:
    # Control: without this, a refusal below could be a payload that simply does nothing.
    marker = tmp_path / "marker"
    path = _evil_checkpoint(tmp_path / "evil.pt", marker, style)
    # the unsafe load the pipeline must never do; a plain pickle then fails torch's magic-number check
    with contextlib.suppress(RuntimeError):
        torch.load(path, weights_only=False)
    assert marker.read_text().strip() == "pwned"


@pytest.mark.parametrize("style", ["torch", "pickle"])
def test_load_checkpoint_refuses_a_code_running_pickle_and_never_runs_it(tmp_path: Path, style: str) -> None:
    marker = tmp_path / "marker"
    path = _evil_checkpoint(tmp_path / "evil.pt", marker, style)
    with pytest.raises(
        CheckpointError, match=r"evil\.pt: refused, not loadable with torch\.load\(weights_only"
    ):
        load_checkpoint(path)
    assert not marker.exists()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project folder with the shipped params.yaml (paths resolve inside it)."""
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy2(REPO / "params.yaml", folder / "params.yaml")
    return folder


@pytest.mark.parametrize("command", ["evaluate", "export", "cexport", "parity"])
@pytest.mark.parametrize("model", ["resnet", "crnn"])
def test_every_cli_command_loading_a_trained_model_refuses_a_code_running_checkpoint(
    project: Path, command: str, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = project / "marker"
    evil = _evil_checkpoint(project / "models" / model / "best.pt", marker, "torch")
    try:
        rc: int | None = main([command, model, "--params", str(project / "params.yaml")])
    except CheckpointError as exc:
        rc, message = None, str(exc)
    else:
        message = capsys.readouterr().err
    assert rc != 0
    assert str(evil) in message and "weights_only" in message
    assert not marker.exists()


def test_predict_refuses_a_code_running_checkpoint_given_as_an_argument(project: Path) -> None:
    marker = project / "marker"
    evil = _evil_checkpoint(project / "evil.pt", marker, "pickle")
    inputs = project / "in"
    inputs.mkdir()
    (inputs / "rec.hea").write_text("rec 1 500 2\nrec.dat 16 1000/mV 16 0 0 0 0 I\n")
    (inputs / "rec.dat").write_bytes(b"\x01\x00\x02\x00")
    proc = subprocess.run(
        [str(BIN / "ecgpipe"), "predict", "--model", str(evil), str(inputs), "--out", str(project / "out")],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert str(evil) in proc.stderr and "weights_only" in proc.stderr
    assert not marker.exists() and not (project / "out").exists()


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


# --------------------------------------------------------------------------- (c) PTB-XL


def _ptbxl_tree(shared: Path, root: Path, outside: Path, ids: list[int]) -> None:
    """``ptbxl_database.csv`` (rows ``ids``, 100 Hz only) and their 100 Hz records under ``root``;
    a copy of record 1 under ``outside`` as ``secret.{hea,dat}``."""
    src = shared / "ptbxl"
    with open(src / "ptbxl_database.csv", newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    rows = [row | {"filename_hr": ""} for row in table if int(row["ecg_id"]) in ids]
    with open(root / "ptbxl_database.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(rows)
    (root / "records100" / "00000").mkdir(parents=True)
    for i in ids:
        for suffix in (".hea", ".dat"):
            rel = f"records100/00000/{i:05d}_lr{suffix}"
            shutil.copy2(src / rel, root / rel)
    for suffix in (".hea", ".dat"):
        shutil.copy2(src / f"records100/00000/00001_lr{suffix}", outside / f"secret{suffix}")


def _set_column(path: Path, ecg_id: int, column: str, value: str) -> None:
    with open(path, newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh))
    for row in table:
        if int(row["ecg_id"]) == ecg_id:
            row[column] = value
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)


def _link_outside(root: Path, rel: str, target: Path) -> None:
    (root / rel).unlink()
    os.symlink(target, root / rel)


@pytest.mark.shared_data
def test_ptbxl_filenames_escaping_the_root_are_rejected_and_nothing_outside_is_opened(
    shared_data: Path, layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    _ptbxl_tree(shared_data, root, outside, [1, 2, 3, 4, 5])
    db = root / "ptbxl_database.csv"
    _set_column(db, 1, "filename_lr", "../outside/secret")
    _set_column(db, 2, "filename_lr", str(outside / "secret"))
    _set_column(db, 5, "filename_hr", "../outside/secret")  # checked even at a rate not read
    _link_outside(root, "records100/00000/00003_lr.dat", outside / "secret.dat")
    _link_outside(root, "records100/00000/00004_lr.hea", outside / "secret.hea")
    reader = PtbXlReader("ptbxl", root, rates=(100,))
    with recorded_opens(monkeypatch) as opened:
        disc = reader.discover()
        records, reasons = read_all(reader, disc)
    assert opened_under(opened, outside) == []
    assert [r.record_id for r in records] == ["ptbxl:00005"]
    row_reasons = " | ".join(r.reason for r in disc.rejected)
    assert "'../outside/secret' escapes the source root" in row_reasons
    assert f"{str(outside / 'secret')!r} is absolute" in row_reasons
    assert "filename_hr: path '../outside/secret' escapes the source root" in row_reasons
    assert "escapes the source root" in reasons["00003"] and "escapes the source root" in reasons["00004"]


@pytest.mark.shared_data
def test_ingest_never_opens_a_symlinked_file_outside_the_source_root(
    shared_data: Path, layout: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    _ptbxl_tree(shared_data, root, outside, [3])
    _link_outside(root, "records100/00000/00003_lr.dat", outside / "secret.dat")
    plan = SignalPlan(
        leads=("I",), lead_aliases=(), fs_hz=None, length=1000, crop="start", baseline_hz=None,
        notch_hz=None, notch_q=30.0, bandpass_hz=None, filter_order=2, normalise="none",
        max_nan_fraction=1.0, flat_ptp_mv=0.0, reject_flat=False, min_duration_s=0.0,
    )  # fmt: skip
    readers: dict[str, SourceReader] = {"ptbxl": PtbXlReader("ptbxl", root, rates=(100,))}
    store = ShardStore(tmp_path / "store" / "p", "p")
    storage = StorageSpec("int16", 0.001, 16)
    with recorded_opens(monkeypatch) as opened:
        ingest_plan = plan_ingest("p", plan, storage, readers, Manifest(profile="p"), batch_units=8)
        results = [run_batch(b, readers, plan, storage, store, {}) for b in ingest_plan.batches]
    assert results and results[0].n_records == 0  # the unit itself is refused by the reader
    assert opened_under(opened, outside) == []


# --------------------------------------------------------------------------- (c) CinC 2017


@pytest.mark.shared_data
def test_cinc2017_reference_names_and_symlinked_files_never_reach_outside_the_root(
    shared_data: Path, layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    src = shared_data / "cinc2017" / "training2017"
    for name in ("A00001", "A00002"):
        for suffix in (".hea", ".mat"):
            shutil.copy2(src / f"{name}{suffix}", root / f"{name}{suffix}")
    for suffix in (".hea", ".mat"):
        shutil.copy2(src / f"A00003{suffix}", outside / f"secret{suffix}")
    _link_outside(root, "A00002.mat", outside / "secret.mat")
    (root / "REFERENCE.csv").write_text(
        f"A00001,N\r\nA00002,A\r\n../outside/secret,O\r\n{outside / 'secret'},~\r\n", encoding="utf-8"
    )
    reader = Cinc2017Reader("cinc2017", root)
    with recorded_opens(monkeypatch) as opened:
        disc = reader.discover()
        records, reasons = read_all(reader, disc)
    assert opened_under(opened, outside) == []
    assert [r.record_id for r in records] == ["cinc2017:A00001"]
    assert "escapes the source root" in reasons["A00002"]
    assert {u.key for u in disc.units} == {"A00001", "A00002"}  # the path-like names matched no record


@pytest.mark.shared_data
def test_a_cinc2017_label_file_linked_outside_the_root_is_rejected_unread(
    shared_data: Path, layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    src = shared_data / "cinc2017" / "training2017"
    for suffix in (".hea", ".mat"):
        shutil.copy2(src / f"A00001{suffix}", root / f"A00001{suffix}")
    (outside / "labels.csv").write_text("A00001,A\r\n")
    os.symlink(outside / "labels.csv", root / "REFERENCE.csv")
    reader = Cinc2017Reader("cinc2017", root)
    with recorded_opens(monkeypatch) as opened:
        disc = reader.discover()
    assert opened_under(opened, outside) == []
    assert disc.units == ()
    reasons = {r.item: r.reason for r in disc.rejected}
    assert "escapes the source root" in reasons["REFERENCE.csv"]


# --------------------------------------------------------------------------- (c) WFDB RECORDS


def _wfdb_tree(shared: Path, root: Path, outside: Path) -> None:
    src = shared / "wfdb_misc"
    for suffix in (".hea", ".dat"):
        shutil.copy2(src / f"3000003_0003{suffix}", root / f"3000003_0003{suffix}")
        shutil.copy2(src / f"3000003_0003{suffix}", outside / f"3000003_0003{suffix}")


@pytest.mark.shared_data
def test_wfdb_records_entries_and_linked_headers_outside_the_root_are_never_opened(
    shared_data: Path, layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    _wfdb_tree(shared_data, root, outside)
    os.symlink(outside / "3000003_0003.hea", root / "linked.hea")
    (root / "RECORDS").write_text(
        f"3000003_0003\nlinked\n../outside/3000003_0003\n{outside / '3000003_0003'}\n"
    )
    reader = WfdbFolderReader("wfdb", root)
    with recorded_opens(monkeypatch) as opened:
        disc = reader.discover()
        records, _ = read_all(reader, disc)
    assert opened_under(opened, outside) == []
    assert [r.record_id for r in records] == ["wfdb:3000003_0003"]
    reasons = {r.item: r.reason for r in disc.rejected}
    assert "escapes the source root" in reasons["linked.hea"]


@pytest.mark.shared_data
def test_a_records_entry_escaping_the_root_is_rejected_with_a_reason(
    shared_data: Path, layout: tuple[Path, Path]
) -> None:
    root, outside = layout
    _wfdb_tree(shared_data, root, outside)
    (root / "RECORDS").write_text("3000003_0003\n../outside/3000003_0003\n")
    disc = WfdbFolderReader("wfdb", root).discover()
    assert any(
        "../outside/3000003_0003" in r.reason or r.item == "../outside/3000003_0003" for r in disc.rejected
    )


@pytest.mark.shared_data
def test_a_records_file_linked_outside_the_root_is_refused_unread(
    shared_data: Path, layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    _wfdb_tree(shared_data, root, outside)
    (outside / "RECORDS").write_text("3000003_0003\n")
    os.symlink(outside / "RECORDS", root / "RECORDS")
    reader = WfdbFolderReader("wfdb", root)
    with recorded_opens(monkeypatch) as opened:
        # the whole discovery fails naming the link (ingest reports it as "discovery failed")
        with pytest.raises(ReadError, match="escapes the source root"):
            reader.discover()
    assert opened_under(opened, outside) == []


# --------------------------------------------------------------------------- (c) CODE


def _code15(root: Path, name: str, exam_ids: list[int]) -> Path:
    path = root / name
    with h5py.File(path, "w") as fh:
        rng = np.random.default_rng(0)
        tracings = rng.standard_normal((len(exam_ids), 4096, 12)).astype(np.float32)
        fh.create_dataset("tracings", data=tracings)
        fh.create_dataset("exam_id", data=np.asarray(exam_ids, dtype=np.int64))
    return path


def _exams_csv(path: Path, rows: list[tuple[int, str]]) -> None:
    header = ["exam_id", "age", "is_male", *LABEL_COLUMNS, "patient_id", "trace_file"]
    lines = [",".join(header)]
    for exam, trace_file in rows:
        lines.append(",".join([str(exam), "60", "True", "1", "0", "0", "0", "0", "0", str(exam), trace_file]))
    path.write_text("\n".join(lines) + "\n")


def test_code_trace_files_escaping_the_root_are_rejected_and_nothing_outside_is_opened(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    _code15(root, "exams_part0.hdf5", [1, 2, 3, 0])
    _code15(outside, "secret.hdf5", [2, 3])
    secret = outside / "secret.hdf5"
    _exams_csv(root / "exams.csv", [(1, "exams_part0.hdf5"), (2, "../outside/secret.hdf5"), (3, str(secret))])
    reader = CodeReader("code", root)
    with recorded_opens(monkeypatch) as opened:
        disc = reader.discover()
        records, reasons = read_all(reader, disc)
    assert opened_under(opened, outside) == []
    assert [r.record_id for r in records] == ["code:1"]
    assert "escapes the source root" in reasons["code:2"]
    assert "is absolute" in reasons["code:3"]


def test_code_wfdb_csv_option_escaping_the_root_fails_discovery_unread(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    _exams_csv(outside / "secret.csv", [(1, "")])
    (root / "TNMG1_N1.hea").write_text("TNMG1_N1 1 400 2\nTNMG1_N1.dat 16 1000/mV 16 0 0 0 0 DI\n")
    (root / "TNMG1_N1.dat").write_bytes(b"\x00" * 4)
    for option in ("../outside/secret.csv", str(outside / "secret.csv")):
        reader = CodeReader("code", root, wfdb_csv=option)
        with recorded_opens(monkeypatch) as opened, pytest.raises(ReadError, match="escapes|absolute"):
            reader.discover()
        assert opened_under(opened, outside) == []


def test_a_code_exam_table_linked_outside_the_root_is_refused_unread(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    _code15(root, "exams_part0.hdf5", [1, 0])
    _exams_csv(outside / "secret.csv", [(1, "exams_part0.hdf5")])
    os.symlink(outside / "secret.csv", root / "exams.csv")
    reader = CodeReader("code", root)
    # the whole discovery fails naming the link (ingest reports it as "discovery failed")
    with recorded_opens(monkeypatch) as opened, pytest.raises(ReadError, match="escapes the source root"):
        reader.discover()
    assert opened_under(opened, outside) == []


def test_code_wfdb_header_whose_signal_file_links_outside_is_rejected_unread(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    _exams_csv(root / "exams.csv", [(1, ""), (2, "")])
    for exam in (1, 2):
        (root / f"TNMG{exam}_N1.hea").write_text(
            f"TNMG{exam}_N1 1 400 2\nTNMG{exam}_N1.dat 16 1000/mV 16 0 0 0 0 DI\n"
        )
    (root / "TNMG1_N1.dat").write_bytes(b"\x01\x00\x02\x00")
    (outside / "secret.dat").write_bytes(b"\x07\x00\x07\x00")
    os.symlink(outside / "secret.dat", root / "TNMG2_N1.dat")
    reader = CodeReader("code", root)
    with recorded_opens(monkeypatch) as opened:
        disc = reader.discover()
        records, _ = read_all(reader, disc)
    assert opened_under(opened, outside) == []
    assert [r.record_id for r in records] == ["code:1"]
    assert "escapes the source root" in {r.item: r.reason for r in disc.rejected}["TNMG2_N1.hea"]


def test_a_code_hdf5_part_linked_outside_the_root_is_never_opened(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = layout
    _code15(outside, "secret.hdf5", [11, 12])
    os.symlink(outside / "secret.hdf5", root / "exams_part0.hdf5")
    _exams_csv(root / "exams.csv", [(11, "exams_part0.hdf5")])
    reader = CodeReader("code", root)
    with recorded_opens(monkeypatch) as opened:
        disc = reader.discover()
        read_all(reader, disc)
    assert opened_under(opened, outside) == []


# --------------------------------------------------------------------------- (d) read-only inputs


_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _writes(opened: list[tuple[str, object, object]], folder: Path) -> list[str]:
    """Opens under ``folder`` that could write: a mode with w/a/x/+ or write flags, or h5py not 'r'."""
    base = os.path.realpath(folder) + os.sep
    bad = []
    for path, mode, flags in opened:
        if not path.startswith(base):
            continue
        if isinstance(mode, str) and mode.startswith("h5py:"):
            writes = mode != "h5py:r"
        elif isinstance(mode, str):
            writes = any(ch in mode for ch in "wax+")
        else:
            writes = isinstance(flags, int) and bool(flags & _WRITE_FLAGS)
        if writes:
            bad.append(f"{path} ({mode}, {flags})")
    return bad


def test_code_hdf5_parts_are_opened_read_only_and_left_unchanged(
    layout: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = layout
    _code15(root, "exams_part0.hdf5", [5, 6, 0])
    _exams_csv(root / "exams.csv", [(5, "exams_part0.hdf5"), (6, "exams_part0.hdf5")])
    before = tree_digest(root)
    reader = CodeReader("code", root, block_size=1)
    with recorded_opens(monkeypatch) as opened:
        disc = reader.discover()
        records, reasons = read_all(reader, disc)
    assert [r.record_id for r in records] == ["code:5", "code:6"] and not reasons
    h5_opens = [mode for path, mode, _ in opened if path.endswith(".hdf5")]
    assert h5_opens and set(h5_opens) == {"h5py:r"}
    assert _writes(opened, root) == []
    assert tree_digest(root) == before


def test_zarr_shards_labels_and_the_loader_read_the_store_without_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline.dataset.loader import make_loader
    from pipeline.dataset.splits import index_from_store, write_index
    from pipeline.store.labels import read_labels
    from pipeline.store.local import read_signal
    from tests.test_splits import build_store, synthetic_specs

    store = build_store(
        tmp_path / "s", synthetic_specs(24, seed=1, folds=False), records_per_chunk=4, shard_records=8
    )
    index = index_from_store(store, fractions={"train": 0.5, "val": 0.25, "test": 0.25}, seed=0)
    index_path = tmp_path / "index.csv"
    write_index(index_path, index.rows, index.header)
    before = tree_digest(store.root)
    modes: list[object] = []
    for name in ("open", "open_group", "open_array"):
        real = getattr(zarr, name)

        def spy(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            modes.append(kwargs.get("mode"))
            return _real(*args, **kwargs)

        monkeypatch.setattr(zarr, name, spy)
    with recorded_opens(monkeypatch) as opened:
        manifest = store.load_manifest()
        n = sum(read_signal(store.open_shard(name)).shape[0] for name in manifest.shards)
        labels = read_labels(store)
        seen = sum(len(batch[0]) for split in ("train", "val", "test")
                   for batch in make_loader(store.root.parent, store.profile, index_path, split,
                                            batch_size=4, shuffle=True, seed=0, num_workers=0))  # fmt: skip
    assert n == 24 and labels is not None and seen == 24
    assert modes and set(modes) == {"r"}
    assert [p for p, _, _ in opened if p.startswith(os.path.realpath(store.root))], "the spy saw no reads"
    assert _writes(opened, store.root) == []
    assert tree_digest(store.root) == before


def test_the_write_detector_sees_a_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Guards the two tests above against passing because the hook saw nothing.
    with recorded_opens(monkeypatch) as opened:
        (tmp_path / "a.txt").write_text("x")
        with h5py.File(tmp_path / "b.h5", "w"):
            pass
        fd = os.open(tmp_path / "c", os.O_WRONLY | os.O_CREAT)
        os.close(fd)
    assert len(_writes(opened, tmp_path)) == 3
