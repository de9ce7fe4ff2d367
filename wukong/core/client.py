"""The client: owns a compute backend and a store, and runs jobs on them.

``Client.get`` follows Dask's scheduler protocol, so ``x.compute(scheduler=client.get)`` works, and
``wukong.get`` is the same on a process-wide default client, created on first use from the
configuration (embedded store, local process pool) and closed at exit, so that many small computes
reuse one pool and one store.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from typing import Any, Self

import dask

from wukong.backends.compute.base import ComputeBackend
from wukong.config import WukongConfig, load_config
from wukong.core import shuffles
from wukong.core.backends import create_compute
from wukong.core.executor import handle_invocation
from wukong.core.graph import TaskGraph, build_task_graph, literal_results, pack_results
from wukong.core.job import Job
from wukong.core.partition import partition
from wukong.core.report import JobReport
from wukong.core.stores import Stores, share, unshare
from wukong.errors import ComputeError, ConfigError, GraphError, JobLostError, StorageError
from wukong.plugins.manager import get_plugin_manager

logger = logging.getLogger("wukong.client")


class Client:
    """Runs Dask graphs on a compute backend and a store named by configuration.

    Example::

        with wukong.Client(compute="local", storage="redis://127.0.0.1:6379/0") as client:
            client.compute(x.sum())          # or x.sum().compute(scheduler=client.get)

    Arguments are :class:`~wukong.config.WukongConfig` fields; those not given come from the
    environment, ``wukong.toml``, ``pyproject.toml`` or the defaults. The stores are checked and the
    workers started here, so a bad name, a bad option or an unreachable store fails at once.

    Attributes:
        config: the validated configuration.
        stores: the metadata and data stores (one object when one store plays both roles).
        compute_backend: the compute backend executors run on.
        last_job: the report of the most recent job, finished or failed.

    """

    def __init__(self, compute: str | None = None, storage: str | None = None, **settings: Any):
        self.config: WukongConfig = load_config(compute=compute, storage=storage, **settings)
        self.last_job: JobReport | None = None
        self._lock = threading.Lock()
        self._cleanups: list[threading.Thread] = []
        config = self.config
        data = None
        if config.data_storage is not None:
            data = (config.data_storage, dict(config.data_storage_options))
        self.stores: Stores = Stores.open((config.storage, dict(config.storage_options)), data)
        try:
            self.stores.validate()
            self.stores.check()
            self.compute_backend: ComputeBackend = self._start_compute()
        except BaseException:
            self.stores.close()
            raise
        self._stores_spec = share(self.stores)

    def _start_compute(self) -> ComputeBackend:
        compute = create_compute(self.config.compute, dict(self.config.compute_options))
        if not self.stores.shared_across_processes and not compute.capabilities.runs_in_client_process:
            raise ConfigError(
                f"{self.stores.describe()} is reachable only from the client's process, but "
                f"{compute.describe()} runs executors elsewhere; use "
                "compute_options={'mode': 'threads'} with the local backend"
            )
        if compute.capabilities.speculates and not self.stores.metadata.capabilities.conditional_increments:
            raise ConfigError(
                f"{compute.describe()} starts speculative backups, whose counts need a metadata store "
                f"with conditional increments, which {self.stores.metadata.describe()} has not; use "
                "redis (or embedded, ideal), or turn speculation off"
            )
        compute.start(handle_invocation)
        return compute

    def get(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        """Compute ``keys`` of graph ``dsk`` (Dask's scheduler protocol; extra keywords are ignored)."""
        started = time.perf_counter()
        graph, computed = self._task_graph(dsk, keys)
        literals = literal_results(graph)
        if len(literals) == len(graph.results):  # nothing to run: the values are in the graph
            return pack_results(keys, shuffles.by_requested_key(keys, computed, literals))
        built = time.perf_counter()
        plan = partition(graph, self.config.page_tasks)
        partitioned = time.perf_counter()
        job = Job(
            graph,
            plan,
            self.compute_backend,
            self.stores,
            self._stores_spec,
            timeout=self.config.timeout,
            cleanup_timeout=self.config.cleanup_timeout,
            key_ttl=self.config.key_ttl,
            locality=self.config.locality,
            monitoring=self.config.monitoring,
            centralized=self.config.scheduling == "centralized",
        )
        job.report.seconds.update(graph=built - started, partition=partitioned - built)
        error: BaseException | None = None
        try:
            job.submit()
            get_plugin_manager().hook.wukong_job_submitted(job=job.report)
            values = job.wait()
        except BaseException as failure:
            error = failure
            job.report.error = f"{type(failure).__name__}: {failure}"
            raise
        finally:
            self.last_job = job.report
            if error is None:
                self._finish(job, None)
            else:
                # The error reaches the user now; executors still running are waited for, and the
                # job's keys removed, in the background (see settle()).
                if isinstance(error, ComputeError):
                    self._restart_compute()
                cleanup = threading.Thread(
                    target=self._finish, args=(job, error), name=f"wukong-cleanup-{job.keys.job}"
                )
                cleanup.start()
                with self._lock:
                    self._cleanups.append(cleanup)
        # A requested literal is the graph's own object, as under Dask's local schedulers.
        results = dict(zip((graph.keys[t] for t in graph.results), values, strict=True)) | literals
        return pack_results(keys, shuffles.by_requested_key(keys, computed, results))

    def _task_graph(self, dsk: Any, keys: Any) -> tuple[TaskGraph, Any]:
        """The graph to run for ``keys``, and the keys it computes them under.

        Where executors share no filesystem, Dask's disk shuffles run as tasks (which renames the
        keys downstream of them), and a graph that still shuffles on disk is refused.
        """
        if self.compute_backend.capabilities.shares_filesystem:
            return build_task_graph(dsk, keys), keys
        dsk, computed = shuffles.as_task_shuffles(dsk, keys)
        graph = build_task_graph(dsk, computed)
        if on_disk := shuffles.disk_shuffle_tasks(graph):
            raise GraphError(shuffles.refusal(on_disk, self.compute_backend.describe()), on_disk)
        return graph, computed

    def _finish(self, job: Job, error: BaseException | None) -> None:
        try:
            job.cleanup(
                failed=error is not None,
                compute_broken=isinstance(error, ComputeError),
                lost=isinstance(error, JobLostError),
            )
        except StorageError:
            if error is None:
                raise
            logger.warning("job %s: the store failed; removing its keys by prefix", job.keys.job)
            job.sweep()
        finally:
            get_plugin_manager().hook.wukong_job_finished(job=job.report, error=error)

    def settle(self, timeout: float | None = None) -> None:
        """Wait until every failed job's clean-up has ended (its keys are gone from storage)."""
        with self._lock:
            cleanups, self._cleanups = self._cleanups, []
        for cleanup in cleanups:
            cleanup.join(timeout)

    def _restart_compute(self) -> None:
        """Replace a broken compute backend, so the client stays usable after a worker died."""
        self.compute_backend.close()
        self.compute_backend = self._start_compute()

    def compute(self, *collections: Any, **kwargs: Any) -> Any:
        """Compute Dask collections; one collection gives its value, several give a tuple."""
        results = dask.compute(*collections, scheduler=self.get, **kwargs)
        return results[0] if len(collections) == 1 else results

    def close(self) -> None:
        """Finish clean-ups, stop the workers and close the store (an embedded store's server too)."""
        self.settle()
        unshare(self.stores)
        try:
            self.compute_backend.close()
        finally:
            self.stores.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


_default_lock = threading.Lock()
_default_client: Client | None = None


def default_client() -> Client:
    """The process-wide client behind :func:`get`, created on first use and closed at exit."""
    global _default_client
    with _default_lock:
        if _default_client is None:
            _default_client = Client()
            atexit.register(close_default_client)
        return _default_client


def close_default_client() -> None:
    """Close the default client (a later :func:`get` starts a new one)."""
    global _default_client
    with _default_lock:
        client, _default_client = _default_client, None
    if client is not None:
        atexit.unregister(close_default_client)
        client.close()


def get(dsk: Any, keys: Any, **kwargs: Any) -> Any:
    """Dask's scheduler protocol on the default client: ``x.compute(scheduler=wukong.get)``."""
    return default_client().get(dsk, keys, **kwargs)
