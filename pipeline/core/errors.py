"""The base of errors caused by input the user can fix (a damaged file, a stale index, a held lock).

``ecgpipe`` prints such an error as one ``error: ...`` line (the message names the file and what was
expected) and exits 2, instead of a traceback; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class PipelineError(Exception):
    """An error about the user's files or state, with a message that says what to do."""
