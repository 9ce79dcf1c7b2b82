"""Pure numpy/scipy transforms on ECG arrays, `(C, T)` per record and `(B, C, T)` per batch (mV, `fs_hz`),
and the per-profile preprocessing plan built from them.

Owns: filters, resampling, normalisation, quantisation, the signal plan, and the compiled extension
`_lanes` (scipy's float64 sosfilt recursion on eight signals per loop, same bits; built by `pip install`
from `_lanes.c`). May import: `pipeline.core`.
"""
