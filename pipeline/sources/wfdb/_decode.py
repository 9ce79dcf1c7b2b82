"""WFDB signal decoding: one numpy decoder of stored samples (:func:`decode_samples`, also used by
the landing check's checksums) and :func:`read_signals`, which decodes formats 16, 212 and 80
(optionally behind a byte offset, as in CinC MATLAB v4 ``.mat`` files) with numpy and hands every
other layout to ``wfdb.rdrecord`` through a normalised temporary header.

Every decode checks the signal file's size against the header's claimed length before it
allocates anything, and refuses a file holding well beyond it (the header misdescribes it).
Private: import the names from :mod:`pipeline.sources.wfdb`.
"""

from __future__ import annotations

import os
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import numpy.typing as npt

from pipeline.core.records import ReadError
from pipeline.sources.base import confined_path, resolved_root
from pipeline.sources.wfdb._header import BYTES_PER_SAMPLE, FLAC_FORMATS, WfdbHeader, mv_factor, signal_files
from pipeline.sources.wfdb._mat import MatLayout, check_mat_v4

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.signedinteger]

_FAST_FORMATS = frozenset({"16", "212", "80"})
# Formats :func:`decode_samples` decodes (the others go through wfdb or are not decoded).
DECODED_FORMATS = frozenset({"16", "61", "160", "212", "24", "32", "80"})

# Digital value WFDB uses for a missing sample, per format (format 8 has none).
INVALID_SAMPLE = {"80": -(2**7), "212": -(2**11), "16": -(2**15)}
_SURPLUS_BYTES = 64  # trailing bytes beyond the declared samples ignored (plus 1% of the data)


def decode_samples(fmt: str, buf: bytes | memoryview, count: int) -> IntArray:
    """``count`` digital samples of WFDB format ``fmt`` (one of :data:`DECODED_FORMATS`) from
    ``buf``, which holds at least their bytes; in stored (interleaved) order, as int16 where the
    format fits (16, 61, 80, 212) and int32 otherwise."""
    if fmt == "16":
        return np.frombuffer(buf, dtype="<i2", count=count)
    if fmt == "61":
        return np.frombuffer(buf, dtype=">i2", count=count).astype(np.int16)
    if fmt == "80":
        return np.frombuffer(buf, dtype=np.uint8, count=count).astype(np.int16) - 128
    if fmt == "160":
        return np.frombuffer(buf, dtype="<u2", count=count).astype(np.int32) - 32768
    if fmt == "32":
        return np.frombuffer(buf, dtype="<i4", count=count)
    if fmt == "24":
        raw = np.frombuffer(buf, dtype=np.uint8, count=3 * count).reshape(-1, 3).astype(np.int32)
        out = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        return np.where(out >= 1 << 23, out - (1 << 24), out)
    if fmt == "212":
        return _decode_212(buf, count)
    raise ValueError(f"format {fmt} is not decoded here; expected one of {sorted(DECODED_FORMATS, key=int)}")


def _decode_212(buf: bytes | memoryview, count: int) -> npt.NDArray[np.int16]:
    """Format 212: two 12-bit two's-complement samples packed in each 3 bytes (a last odd one in 2)."""
    raw = np.frombuffer(buf, dtype=np.uint8)
    pad = -len(raw) % 3
    if pad:
        raw = np.concatenate([raw, np.zeros(pad, dtype=np.uint8)])
    triples = raw.reshape(-1, 3).astype(np.int16)
    out = np.empty(triples.shape[0] * 2, dtype=np.int16)
    out[0::2] = triples[:, 0] | ((triples[:, 1] & 0x0F) << 8)
    out[1::2] = triples[:, 2] | ((triples[:, 1] & 0xF0) << 4)
    out[out >= 2048] -= 4096
    return out[:count]


@dataclass(frozen=True)
class _FileGroup:
    """The signals stored in one signal file."""

    name: str
    path: Path
    rel: str
    rows: tuple[int, ...]
    fmt: str
    byte_offset: int
    frame_width: int  # samples per frame summed over the file's signals
    size: int  # bytes
    data: bytes | None = None  # the file's bytes when the caller has already read them


def read_signals(
    header: WfdbHeader,
    directory: Path,
    root: Path,
    rows: Sequence[int] | None = None,
    loaded: Mapping[str, tuple[str, bytes]] | None = None,
) -> FloatArray:
    """Decode a record's signals ``rows`` (default: all) as float32 ``(C, T)``, each at its true rate.

    Voltage channels are in mV: ``(digital - baseline) / gain``, converted from uV/V where the
    units say so; other channels (``NU``, ``mmHg``) are ``(digital - baseline) / gain`` in their
    own units (see :func:`physical_units`). Invalid-sample codes become NaN. ``directory`` is
    the header's folder; signal files must lie inside ``root``.

    A signal stored with ``spf`` samples per frame is read sample for sample, never averaged per
    frame: ``T`` is the number of frames times the largest ``spf`` among ``rows``, so the result is
    at :func:`sample_rate_hz` ``(header, rows)``. A row stored at fewer samples per frame is
    linearly interpolated onto that grid (choose ``rows`` sharing one rate to avoid it).

    ``loaded`` maps a signal file name of the header to its root-relative path and the bytes the
    caller has already read from that (confined) path; they are decoded instead of reading the file
    again, for the numpy formats (others read the file as usual). The result is the same.
    """
    if header.n_sig == 0:
        raise ReadError(f"{header.record_name}: header declares no signals")
    chosen = list(range(header.n_sig)) if rows is None else list(rows)
    groups = _file_groups(header, directory, root, loaded if _fast_header(header) else None)
    n_frames = _checked_frames(header, groups)
    for group in groups:  # a .mat file's own header is checked before its size against the WFDB one
        if group.path.suffix.lower() == ".mat":
            layout = MatLayout(group.rel, group.fmt, group.byte_offset, group.frame_width, header.n_samples)
            check_mat_v4(group.path, layout, group.size)
    _check_surplus(header, groups)
    if _fast_path_ok(header, groups):
        digital = np.empty((header.n_sig, n_frames), dtype=np.float64)
        invalid = np.zeros((header.n_sig, n_frames), dtype=bool)
        for group in groups:
            _decode_group(group, n_frames, digital, invalid)
        signal = _to_physical(header, digital, invalid)
        return _finite_or_refused(header, signal if rows is None else np.ascontiguousarray(signal[chosen]))
    tracks = _read_with_wfdb(header, groups, n_frames)
    return _finite_or_refused(header, _on_common_grid(header, [tracks[i] for i in chosen], chosen))


def sample_rate_hz(header: WfdbHeader, rows: Sequence[int] | None = None) -> float:
    """Rate in Hz of :func:`read_signals` ``(header, rows)``: the frame rate times the largest number
    of samples per frame among ``rows`` (a 62.47 Hz frame with 4 ECG samples each is 249.89 Hz)."""
    chosen = range(header.n_sig) if rows is None else rows
    return header.fs_hz * max((header.signals[i].samples_per_frame for i in chosen), default=1)


def _on_common_grid(header: WfdbHeader, tracks: list[FloatArray], rows: list[int]) -> FloatArray:
    """Stack per-signal sample tracks ``(n_frames * spf_i,)`` into ``(C, n_frames * max spf)``."""
    spf = [header.signals[i].samples_per_frame for i in rows]
    top = max(spf)
    n_frames = len(tracks[0]) // spf[0] if tracks else 0
    out = np.empty((len(rows), n_frames * top), dtype=np.float32)
    target = (np.arange(n_frames * top, dtype=np.float64) + 0.5) / top  # sample centres, in frames
    for k, (track, n) in enumerate(zip(tracks, spf, strict=True)):
        if n == top:
            out[k] = track
        else:
            # Lower-rate signals (respiration beside ECG) are only ever interpolated up, never
            # ECG averaged down; linear interpolation keeps NaN gaps local.
            source = (np.arange(len(track), dtype=np.float64) + 0.5) / n
            out[k] = np.interp(target, source, track.astype(np.float64))
    return out


def _finite_or_refused(header: WfdbHeader, signal: FloatArray) -> FloatArray:
    """Refuse a record whose gains turn stored samples into ±inf (a gain too small for float32)."""
    inf = np.isinf(signal)
    if inf.any():
        lead = int(np.nonzero(inf.any(axis=-1))[0][0])
        spec = header.signals[lead]
        raise ReadError(
            f"{header.record_name}: signal {lead} ({spec.description or 'unnamed'}) has gain {spec.gain!r} "
            f"{spec.units}; its samples exceed the float32 range in mV; expected a gain such as 200 or 1000"
        )
    return signal


def _file_groups(
    header: WfdbHeader, directory: Path, root: Path, loaded: Mapping[str, tuple[str, bytes]] | None = None
) -> list[_FileGroup]:
    if any(s.file_name == "~" for s in header.signals):
        raise ReadError(f"{header.record_name}: a signal has no file ('~'); expected stored samples")
    groups = []
    for name in signal_files(header):
        rows = tuple(i for i, s in enumerate(header.signals) if s.file_name == name)
        first = header.signals[rows[0]]
        if any(header.signals[i].fmt != first.fmt for i in rows):
            raise ReadError(f"{name}: signals stored in one file have different formats; expected one")
        width = sum(header.signals[i].samples_per_frame for i in rows)
        if loaded is not None and name in loaded and first.fmt in _FAST_FORMATS:
            # Already confined and read by the caller: no path resolution, stat or second read.
            rel, data = loaded[name]
            groups.append(
                _FileGroup(
                    name, directory / name, rel, rows, first.fmt, first.byte_offset, width, len(data), data
                )
            )
            continue
        # relpath is pure string work, so both sides are resolved first: against a symlinked root
        # as written, every file would look like '../../..' (the root is trusted, see
        # resolved_root); confined_path then resolves links inside it and refuses escapes.
        here = os.path.realpath(directory)
        rel = PurePosixPath(os.path.relpath(Path(here) / name, resolved_root(root))).as_posix()
        path = confined_path(Path(root), rel)
        try:
            info = path.stat()
        except OSError as exc:
            raise ReadError(
                f"{rel}: signal file named by header {header.record_name} does not exist"
            ) from exc
        if not stat.S_ISREG(info.st_mode):
            raise ReadError(f"{rel}: signal file named by header {header.record_name} is not a regular file")
        groups.append(_FileGroup(name, path, rel, rows, first.fmt, first.byte_offset, width, info.st_size))
    return groups


def _bytes_for(fmt: str, n_samples: int) -> int:
    num, den = BYTES_PER_SAMPLE[fmt]
    return -(-n_samples * num // den)


def _padded_bytes(group: _FileGroup, n_frames: int) -> int:
    """Largest valid file size for ``n_frames``: a last partial group of a packed format (212,
    310, 311) may be padded to whole bytes of the group."""
    num, den = BYTES_PER_SAMPLE[group.fmt]
    return group.byte_offset + -(-n_frames * group.frame_width // den) * num


def _frames_in(group: _FileGroup, size: int) -> int:
    num, den = BYTES_PER_SAMPLE[group.fmt]
    return max(size - group.byte_offset, 0) * den // num // group.frame_width


def _checked_frames(header: WfdbHeader, groups: list[_FileGroup]) -> int:
    """Frames to read: the header's count after checking each file holds them, or (when the
    header gives none) the number every file holds."""
    counts = []
    for group in groups:
        if group.fmt in FLAC_FORMATS:
            continue
        size = group.size
        if header.n_samples is None:
            counts.append(_frames_in(group, size))
            continue
        need = group.byte_offset + _bytes_for(group.fmt, header.n_samples * group.frame_width)
        if size < need:
            raise ReadError(
                f"{group.rel}: header declares {header.n_samples} samples x {len(group.rows)} signals "
                f"({need} bytes) but the file holds only {size} bytes"
            )
    if header.n_samples is not None:
        return header.n_samples
    if not counts:
        raise ReadError(f"{header.record_name}: header gives no sample count for a compressed signal file")
    return min(counts)


def _check_surplus(header: WfdbHeader, groups: list[_FileGroup]) -> None:
    """ReadError when a file holds well beyond the samples its header declares.

    A little trailing junk or padding is ignored (up to ``_SURPLUS_BYTES`` + 1% of the data); more
    means the header misdescribes the file (a wrong format code, signal count or sample count), and
    decoding would silently interleave the wrong samples.
    """
    if header.n_samples is None:
        return
    for group in groups:
        if group.fmt in FLAC_FORMATS:
            continue
        end = _padded_bytes(group, header.n_samples)
        if group.size - end > _SURPLUS_BYTES + (end - group.byte_offset) // 100:
            raise ReadError(
                f"{group.rel}: holds {_frames_in(group, group.size)} samples x {len(group.rows)} signals "
                f"({group.size} bytes) but the header declares {header.n_samples} samples; expected the "
                f"file to end after them ({end} bytes, format {group.fmt})"
            )


def _fast_header(header: WfdbHeader) -> bool:
    """True when numpy decodes every signal: no multi-rate, skewed or MAT v4 (checked on its file)."""
    return all(
        s.fmt in _FAST_FORMATS
        and s.samples_per_frame == 1
        and s.skew == 0
        and not s.file_name.lower().endswith(".mat")
        for s in header.signals
    )


def _fast_path_ok(header: WfdbHeader, groups: list[_FileGroup]) -> bool:
    return all(g.fmt in _FAST_FORMATS for g in groups) and all(
        s.samples_per_frame == 1 and s.skew == 0 for s in header.signals
    )


def _decode_group(
    group: _FileGroup,
    n_frames: int,
    digital: npt.NDArray[np.float64],
    invalid: npt.NDArray[np.bool_],
) -> None:
    """Decode one file's interleaved samples into rows ``group.rows`` of ``digital``."""
    n_total = n_frames * len(group.rows)
    n_bytes = _bytes_for(group.fmt, n_total)
    buf: bytes | memoryview
    if group.data is not None:
        buf = memoryview(group.data)[group.byte_offset : group.byte_offset + n_bytes]
    else:
        with group.path.open("rb") as fh:
            fh.seek(group.byte_offset)
            buf = fh.read(n_bytes)
    frames = decode_samples(group.fmt, buf, n_total).reshape(n_frames, len(group.rows))
    rows = list(group.rows)
    if rows == list(range(rows[0], rows[0] + len(rows))):
        target = slice(rows[0], rows[0] + len(rows))
        digital[target] = frames.T
        invalid[target] = INVALID_SAMPLE[group.fmt] == frames.T
    else:
        digital[rows] = frames.T
        invalid[rows] = INVALID_SAMPLE[group.fmt] == frames.T


def _scales(header: WfdbHeader) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Per-channel baseline and divisor such that ``(d - baseline) / divisor`` is in mV."""
    baseline = np.array([s.baseline for s in header.signals], dtype=np.float64)
    divisor = np.array([s.gain / (mv_factor(s.units) or 1.0) for s in header.signals], dtype=np.float64)
    return baseline, divisor


def _to_physical(
    header: WfdbHeader, digital: npt.NDArray[np.float64], invalid: npt.NDArray[np.bool_]
) -> FloatArray:
    baseline, divisor = _scales(header)
    # float64 arithmetic, as wfdb does, so mV channels equal wfdb's p_signal cast to float32.
    digital -= baseline[:, None]
    digital /= divisor[:, None]
    out = digital.astype(np.float32)
    if invalid.any():
        out[invalid] = np.nan
    return out


def _read_with_wfdb(header: WfdbHeader, groups: list[_FileGroup], n_frames: int) -> list[FloatArray]:
    """Decode any other layout with ``wfdb.rdrecord`` through a normalised header in a temp dir:
    one float32 track per signal, ``n_frames * spf`` samples long (``smooth_frames=False``, so a
    multi-rate signal keeps every sample rather than one average per frame).

    The temp header uses plain names wfdb accepts and links to the (already confined and
    size-checked) signal files, so header quirks wfdb rejects never reach it.
    """
    import wfdb

    with tempfile.TemporaryDirectory(prefix="ecgpipe-wfdb-") as tmp:
        names = {}
        for i, group in enumerate(groups):
            names[group.name] = f"sig{i}.dat"
            (Path(tmp) / names[group.name]).symlink_to(group.path)
        (Path(tmp) / "rec.hea").write_text(_normalised_header(header, names, n_frames), encoding="ascii")
        try:
            record = wfdb.rdrecord(str(Path(tmp) / "rec"), physical=True, return_res=64, smooth_frames=False)
        except Exception as exc:  # wfdb raises many types (ValueError, IndexError, ...)
            files = ", ".join(g.rel for g in groups)
            raise ReadError(f"{files}: wfdb could not decode the signals: {exc}") from exc
    tracks = []
    for spec, track in zip(header.signals, record.e_p_signal, strict=True):
        values = np.asarray(track, dtype=np.float64) * (mv_factor(spec.units) or 1.0)
        if len(values) != n_frames * spec.samples_per_frame:
            raise ReadError(
                f"{header.record_name}: signal {spec.description or 'unnamed'} decoded to {len(values)} "
                f"samples; expected {n_frames} frames x {spec.samples_per_frame}"
            )
        tracks.append(values.astype(np.float32))
    return tracks


def _normalised_header(header: WfdbHeader, names: dict[str, str], n_frames: int) -> str:
    lines = [f"rec {header.n_sig} {header.fs_hz!r} {n_frames}"]
    for s in header.signals:
        fmt = s.fmt
        fmt += f"x{s.samples_per_frame}" if s.samples_per_frame != 1 else ""
        fmt += f":{s.skew}" if s.skew else ""
        fmt += f"+{s.byte_offset}" if s.byte_offset else ""
        # Units are applied by the caller; the temp header only needs gain and baseline.
        # Format 8 stores first differences, so wfdb needs the initial value to rebuild samples.
        init = "" if s.init_value is None else f" {s.init_value}"
        lines.append(f"{names[s.file_name]} {fmt} {s.gain!r}({s.baseline})/mV {s.adc_res} {s.adc_zero}{init}")
    return "\n".join(lines) + "\n"
