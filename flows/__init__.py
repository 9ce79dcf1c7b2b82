"""Prefect flows and deployments: orchestration only; all computing is in ``pipeline``.

Importing this package sets safe Prefect defaults unless the caller set them: state under the
project's ``.prefect/`` folder, no analytics, and a generous ephemeral-server start-up timeout; and
when ``ecgpipe server start`` left a healthy server running (and ``PREFECT_API_URL`` is unset), every
flow uses it instead of starting a temporary server (flows/server.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from flows.server import use_running_server  # standard library only; reads PREFECT_HOME when called


def _prefect_defaults() -> None:
    os.environ.setdefault("PREFECT_HOME", str(Path.cwd() / ".prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    os.environ.setdefault("PREFECT_UI_ENABLED", "false")


_prefect_defaults()

use_running_server()
