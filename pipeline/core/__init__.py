"""Shared vocabulary of the whole library: the record contract (`Record`, `InputUnit`, `Rejection`),
lead names, the user-error base class, the test crash points, the file-system rules written once
(`fs`: atomic write, file sha256, folder fsync, writer lock) and `provenance` (the git state and DVC
stage run record that training, lineage and every stage command stamp on what they write).

Owns: nothing stateful. May import: the standard library and numpy only (no other `pipeline` package).
"""
