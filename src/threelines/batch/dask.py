"""The Dask engine of ``threelines batch``: chunks screened on the workers of a Dask cluster.

The projects of each piece of input are partitioned spatially with
dask-geopandas (Hilbert distance of their centroids), and each partition is
screened on a worker by the same code as the local engine. Workers load the
manifest and rules from their paths, once per process, so the layers must be
reachable from every worker: files on shared storage, or PostGIS. Without a
scheduler address a local cluster is started (one single-threaded worker
process per job) and closed afterwards.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from threelines.errors import ThreelinesError

log = logging.getLogger(__name__)


class ClusterError(ThreelinesError, RuntimeError):
    """The Dask scheduler cannot be reached, or a worker failed."""


@dataclass(frozen=True)
class WorkerSetup:
    """What a worker needs to screen chunks: where the manifest and rules are, and the batch's options."""

    manifest: str
    rules: str
    cache_dir: Path | None
    lang: str | None
    reports: object | None


def screen_on_worker(task, setup: WorkerSetup):
    """Screen one chunk on a Dask worker (loading the manifest and rules on the worker's first chunk)."""
    from threelines.batch import workers as batch_workers
    from threelines.layers.manifest import load_manifest
    from threelines.rules import load_rules

    if batch_workers._WORKER.get("setup") != setup:
        manifest = load_manifest(setup.manifest)
        rules = load_rules(setup.rules, manifest)
        batch_workers.init_worker(manifest, rules, setup.cache_dir, setup.lang, setup.reports)
        batch_workers._WORKER["setup"] = setup
    return batch_workers.screen_chunk(task)


class DaskScreener:
    """Screens chunks in order on a Dask cluster, with a bounded number in flight.

    Parameters
    ----------
    setup : WorkerSetup
    scheduler : str, optional
        ``tcp://host:8786``; None starts a local cluster of ``jobs`` workers.
    jobs : int
        Workers of a local cluster.
    in_flight_per_worker : int
        Chunks queued per worker thread.
    """

    def __init__(self, setup: WorkerSetup, scheduler: str | None, jobs: int, in_flight_per_worker: int = 3):
        from threelines.extras import require

        require("dask", "the Dask engine (batch --engine dask)")
        self.setup, self.scheduler, self.jobs = setup, scheduler, jobs
        self.in_flight_per_worker = in_flight_per_worker
        self.client = self.cluster = None

    def __enter__(self) -> DaskScreener:
        from distributed import Client, LocalCluster

        # Dask logs every worker start and stop at INFO: keep them at this command's level or quieter.
        level = max(logging.getLogger().getEffectiveLevel(), logging.WARNING)
        for name in ("distributed", "dask"):
            logging.getLogger(name).setLevel(level)
        try:
            if self.scheduler:
                self.client = Client(self.scheduler, timeout="20s")
            else:
                # The dashboard on any free port: the default 8787 may be another cluster's. Nothing more is
                # needed for the workers to end with this process, even killed: distributed keeps a pipe
                # open to each, and a worker exits when it closes (tests/test_dask.py kills a batch).
                self.cluster = LocalCluster(
                    n_workers=self.jobs, threads_per_worker=1, processes=True, dashboard_address=":0"
                )
                self.client = Client(self.cluster)
        except (OSError, TimeoutError) as exc:
            self.__exit__()
            raise ClusterError(f"--scheduler {self.scheduler}: cannot reach the Dask scheduler ({exc})") from None
        return self

    def __exit__(self, *exc) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    @property
    def slots(self) -> int:
        """Worker threads of the cluster (at least one)."""
        return max(1, sum(self.client.nthreads().values()))

    @staticmethod
    def order(projects, positions: list[int]) -> list[int]:
        """Positions in the order of their partitions: dask-geopandas' Hilbert distance of the centroids."""
        import dask_geopandas
        import geopandas as gpd
        import shapely

        if len(positions) < 2:
            return positions
        points = gpd.GeoSeries(shapely.centroid(projects.geometry[positions]))
        series = dask_geopandas.from_geopandas(points, npartitions=max(1, len(points) // 5000))
        keys = series.hilbert_distance(total_bounds=points.total_bounds).compute(scheduler="sync").to_numpy()
        return [positions[i] for i in np.argsort(keys, kind="stable")]

    def start(self) -> None:
        """Nothing to start ahead: the cluster's workers are started with it."""

    def map(self, tasks):
        """Yield each task's records, in the order of the tasks."""
        pending: deque = deque()
        limit = self.in_flight_per_worker * self.slots
        for task in tasks:
            pending.append(self.client.submit(screen_on_worker, task, self.setup, pure=False))
            if len(pending) >= limit:
                yield self._result(pending.popleft())
        while pending:
            yield self._result(pending.popleft())

    @staticmethod
    def _result(future):
        try:
            return future.result()
        except ThreelinesError:
            raise
        except Exception as exc:  # a worker died or the task could not run there
            raise ClusterError(f"a Dask worker failed: {type(exc).__name__}: {exc}") from None
