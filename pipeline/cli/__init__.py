"""`ecgpipe ...` entry points. Each command imports its work lazily; DVC stages call these.

May import: everything in `pipeline`; never `prefect` or `flows` (flow commands are registered by `flows`).
"""
