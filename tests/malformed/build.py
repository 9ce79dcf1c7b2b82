"""The corpus entry point: every source builder in a fixed order, each with its own seeded rng."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tests.malformed.cinc2017 import build_cinc2017
from tests.malformed.cinc2021 import build_cinc2021
from tests.malformed.code15 import build_code, write_part
from tests.malformed.corpus import SEED, Corpus
from tests.malformed.multiseg_edf import build_edf, build_multisegment
from tests.malformed.ptb_diagnostic import build_ptb_diagnostic
from tests.malformed.ptbxl import build_ptbxl
from tests.malformed.ucr import build_ucr
from tests.malformed.wfdb_folders import build_cpsc2021, build_mitbih, build_wfdb_misc

# The order is part of the corpus: each builder's rng is drawn from the seed in this order.
BUILDERS: tuple[Callable[[Corpus, Path, np.random.Generator], None], ...] = (
    build_ptbxl,
    build_cinc2017,
    build_cinc2021,
    build_ptb_diagnostic,
    build_code,
    build_ucr,
    build_mitbih,
    build_cpsc2021,
    build_wfdb_misc,
    build_multisegment,
    build_edf,
)


def build_corpus(shared: Path, out: Path, seed: int = SEED) -> Corpus:
    """Write the corpus under ``out`` (``out/raw/<source>``, ``out/outside``) and return it."""
    outside = out / "outside"
    outside.mkdir(parents=True)
    (outside / "secret.dat").write_bytes(b"\x01\x02" * 50_000)
    (outside / "secret.hea").write_text("secret 1 500 50000\nsecret.dat 16 1000/mV 16 0 0 0 0 I\n")
    write_part(outside / "part.hdf5", [1001], np.zeros((1, 4096, 12), np.float32))
    corpus = Corpus(raw=out / "raw", outside=outside, sources={}, variants=[], good={})
    rng = np.random.default_rng(seed)
    for build in BUILDERS:
        build(corpus, shared, np.random.default_rng(rng.integers(2**63)))
    names = [v.name for v in corpus.variants]
    duplicates = [n for n, c in Counter(names).items() if c > 1]
    assert not duplicates, f"variant names repeat: {duplicates}"
    return corpus
