"""The built-in demo data: synthetic ECG and the raw source tree written from it.

Owns: the ECG model (`synth` public API over `waves`, `rhythm`, `noise`) and the demo raw tree
(`raw_tree` entry point over `formats` and one writer per source: `ptbxl_tree`, `cinc_tree`,
`ucr_tree`). May import: `pipeline.core`.
"""
