"""Where a store lives: a local folder or an object-store URL, with its fsspec options."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
from fsspec.core import url_to_fs


@dataclass(frozen=True)
class StoreRoot:
    """Where every profile's store lives: a local folder, or an object-store URL (``s3://bucket/prefix``)
    with its fsspec options (``endpoint_url``, ``client_kwargs``, ...). Picklable, so it travels to
    Dask workers and DataLoader workers, which open their own connections."""

    url: str
    options: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def of(cls, root: StoreRoot | Path | str, options: Mapping[str, Any] | None = None) -> StoreRoot:
        if isinstance(root, StoreRoot):
            return root
        return cls(str(root), tuple(sorted((options or {}).items())))

    @property
    def is_remote(self) -> bool:
        return is_url(self.url)

    def child(self, name: str) -> StoreRoot:
        """The root one level down (e.g. the smoke store under the main one)."""
        if self.is_remote:
            return StoreRoot(f"{self.url.rstrip('/')}/{name}", self.options)
        return StoreRoot(str(Path(self.url) / name), self.options)

    def filesystem(self) -> tuple[fsspec.AbstractFileSystem, str]:
        """``(filesystem, path inside it)``; listings are not cached, since other processes write."""
        fs, path = url_to_fs(self.url, use_listings_cache=False, **dict(self.options))
        return fs, str(path).rstrip("/")


def is_url(root: str | Path) -> bool:
    """True for ``scheme://...`` other than ``file://`` (which is a local folder)."""
    text = str(root)
    return "://" in text and not text.startswith("file://")
