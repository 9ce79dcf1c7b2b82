"""The ``profiles`` section: a dataset profile's leads, rate, length, filters, storage and checks."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from pipeline.config.base import _Strict


class Storage(_Strict):
    dtype: Literal["int16", "float32"] = "int16"
    scale_mv: float = Field(default=0.001, gt=0, description="mV per stored integer step (int16 only)")
    records_per_chunk: int = Field(default=16, ge=1, le=4096)
    # The signal codec (Blosc, one per inner chunk). The default keeps the stores' bytes as they were;
    # lz4 level 9 with bit-shuffle decodes ~2x faster for ~1.2x the size (benchmarks/codecs).
    # A change applies to shards written afterwards; readers take the codec from each shard.
    codec: Literal["zstd", "lz4"] = "zstd"
    clevel: int = Field(default=3, ge=1, le=9, description="Blosc compression level")
    shuffle: Literal["bitshuffle", "shuffle", "noshuffle"] = "bitshuffle"


class Quality(_Strict):
    max_nan_fraction: float = Field(default=0.01, ge=0, le=1)
    flat_ptp_mv: float = Field(default=0.02, ge=0, description="a lead whose peak-to-peak is below is flat")
    reject_flat: bool = True
    min_duration_s: float = Field(default=1.0, ge=0)


class Profile(_Strict):
    sources: tuple[str, ...]
    leads: tuple[str, ...] = Field(min_length=1)
    lead_aliases: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    fs_hz: float | None = Field(default=None, gt=0)
    length_s: float | None = Field(default=None, gt=0)
    length_samples: int | None = Field(default=None, gt=0)
    crop: Literal["start", "center"] = "start"
    baseline_hz: float | None = Field(default=0.5, gt=0)
    notch_hz: Literal[50, 60] | None = 50
    notch_q: float = Field(default=30.0, gt=0)
    bandpass_hz: tuple[float, float] | None = None
    filter_order: int = Field(default=2, ge=1, le=8)
    normalise: Literal["none", "zscore", "minmax"] = "none"
    storage: Storage = Storage()
    quality: Quality = Quality()
    vocabulary: tuple[str, ...] | None = None
    label_merge: dict[str, str] = Field(
        default_factory=dict, description="unified label → profile label, for labels outside its vocabulary"
    )

    @model_validator(mode="after")
    def _check(self) -> Profile:
        if (self.length_s is None) == (self.length_samples is None):
            raise ValueError("set exactly one of length_s (seconds, needs fs_hz) or length_samples")
        if self.length_s is not None and self.fs_hz is None:
            raise ValueError("length_s needs fs_hz; with native sampling use length_samples")
        filters = self.baseline_hz or self.notch_hz or self.bandpass_hz
        if self.fs_hz is None and filters:
            raise ValueError(
                "filters need a known fs_hz: set fs_hz or baseline_hz/notch_hz/bandpass_hz: null"
            )
        if self.fs_hz is not None:
            nyq = self.fs_hz / 2
            if self.notch_hz is not None and self.notch_hz >= nyq:
                raise ValueError(f"notch_hz {self.notch_hz} must be below Nyquist ({nyq} Hz at fs_hz)")
            if self.bandpass_hz is not None:
                lo, hi = self.bandpass_hz
                if not 0 < lo < hi < nyq:
                    raise ValueError(f"bandpass_hz must satisfy 0 < low < high < {nyq} (Nyquist)")
        return self

    @property
    def length(self) -> int:
        """Output length in samples at ``fs_hz``."""
        if self.length_samples is not None:
            return self.length_samples
        assert self.length_s is not None and self.fs_hz is not None
        return int(round(self.length_s * self.fs_hz))
