"""The landing zone: checks on newly landed files, the ledger of what was taken, and taking files into
a source folder.

Modules: ``check`` (is a landed record complete; its signal-file rules in ``signal_check``, the
findings it collects in ``findings``), ``ledger`` (what was taken, exactly once),
``report`` (targets, taken records, what is left and why), ``files`` (listing, copy with fsync),
``folder`` (a run's state; decisions that move nothing), ``take`` (the entry points; moving a record).

May import: the layers below (`sources`, `core`).
"""
