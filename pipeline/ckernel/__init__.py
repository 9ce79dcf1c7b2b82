"""The C kernels' Python side: the weight-file export, the ctypes binding, the C model runner, and the
layer-by-layer parity check with its trace and report.

May import: `training`, `evaluation` and the layers below.
"""
