"""The landing zone: checks on newly landed files, the ledger of what was taken, and taking files into
a source folder.

May import: the layers below (`sources`, `core`).
"""
