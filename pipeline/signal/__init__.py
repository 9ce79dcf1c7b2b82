"""Pure numpy/scipy transforms on ECG arrays, `(C, T)` per record and `(B, C, T)` per batch (mV, `fs_hz`),
and the per-profile preprocessing plan built from them.

Owns: filters, resampling, normalisation, quantisation, the signal plan. May import: `pipeline.core`.
"""
