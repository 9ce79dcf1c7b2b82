"""The C kernels' Python side: the weight-file export, the ctypes binding, the C model runner, and the
layer-by-layer parity check with its trace and report.

Modules: `abi` (library file, ctypes signatures, argument checks), `lib` (the kernels as numpy
functions), `weights` (the weight file), `model` (the C model runner), `parity`, `trace`, `report`.

May import: `training`, `evaluation` and the layers below.
"""
