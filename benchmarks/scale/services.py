"""The servers a scale run lives with (Prefect API, moto S3), its Dask clusters, and where runs store."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks.scale.options import BUCKET, Config
from pipeline.store.root import StoreRoot
from tests.dask_cluster import DaskCluster, local_cluster
from tests.prefect_server import prefect_server, server_env
from tests.s3_server import S3Server, moto_s3

REQUEST_LINE = re.compile(r'"(GET|PUT|HEAD|POST|DELETE) (\S+) HTTP/')


LOG_SETTLE_S = 0.3  # moto writes a request's log line after sending the response


@dataclass(frozen=True)
class Services:
    """The servers that live for the whole run: the Prefect API and moto S3; and the environment
    that the Dask workers are started with."""

    api: str
    s3: S3Server
    moto_log: Path
    worker_env: Mapping[str, str]


@contextmanager
def services(work: Path) -> Iterator[Services]:
    """Start the servers, point this process at them, and stop them on exit.

    The flow's settings travel with every task, but the workers get the API and the S3
    credentials in their environment too, so nothing they do can fall back to a temporary
    Prefect server or a real AWS account.
    """
    with ExitStack() as stack:
        api = stack.enter_context(prefect_server(work / "prefect-server"))
        s3 = stack.enter_context(moto_s3(work / "moto"))
        os.environ.update({"PREFECT_API_URL": api, "PREFECT_HOME": str(work / "prefect-flow"), **s3.env()})
        env = {**server_env(work / "prefect-workers", api), **s3.env()}
        s3.make_bucket(BUCKET)
        yield Services(api=api, s3=s3, moto_log=work / "moto" / "moto_server.log", worker_env=env)


@contextmanager
def cluster_for(workers: int | None, svc: Services, work: Path) -> Iterator[DaskCluster | None]:
    """A fresh Dask cluster of ``workers`` processes for one round's runs (None: no cluster).

    Only one cluster is up at a time: an idle ``dask worker`` burns about 3 % of a core in
    heartbeats (measured here), which on 2 cores would be charged to whichever run is going.
    """
    if workers is None:
        yield None
        return
    with local_cluster(workers, work, env=svc.worker_env) as cluster:
        yield cluster


class RequestLog:
    """S3 requests counted from the moto server's log (one line per request), by kind."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def mark(self) -> int:
        return self.path.stat().st_size

    def since(self, mark: int) -> dict[str, int]:
        """Requests logged after ``mark``: GET (ranged or whole object), LIST, HEAD, PUT, DELETE, POST."""
        time.sleep(LOG_SETTLE_S)
        with self.path.open("rb") as fh:
            fh.seek(mark)
            text = fh.read().decode(errors="replace")
        counts: Counter[str] = Counter()
        for method, target in REQUEST_LINE.findall(text):
            counts["LIST" if method == "GET" and "list-type=" in target else method] += 1
        return dict(sorted(counts.items()))


def store_root(cfg: Config, name: str, work: Path, svc: Services) -> StoreRoot:
    """Where run ``name`` of ``cfg`` writes: a local folder or a prefix in the benchmark's bucket."""
    if cfg.store == "s3":
        return StoreRoot.of(f"s3://{BUCKET}/{name}", {"endpoint_url": svc.s3.endpoint_url})
    return StoreRoot.of(work / "stores" / name)


def remove_store(root: StoreRoot, svc: Services) -> None:
    """Delete a store root (local folder or S3 prefix), so that the next run starts from nothing."""
    if root.is_remote:
        fs = svc.s3.filesystem()
        key = root.url.removeprefix("s3://")
        if fs.exists(key):
            fs.rm(key, recursive=True)
    else:
        shutil.rmtree(root.url, ignore_errors=True)
