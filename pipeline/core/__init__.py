"""Shared vocabulary of the whole library: the record contract (`Record`, `InputUnit`, `Rejection`),
lead names, the user-error base class, and the test crash points.

Owns: nothing stateful. May import: the standard library and numpy only (no other `pipeline` package).
"""
