"""The client: owns a compute backend and a store, and runs jobs on them.

``Client.get`` follows Dask's scheduler protocol, so ``x.compute(scheduler=client.get)`` works (and
``scheduler=client``), and ``wukong.get`` is the same on the default client: the newest client set
as default (see :mod:`wukong.core.defaults`), else a process-wide client created on first use from
the configuration (embedded store, local process pool) and closed at exit, so that many small
computes reuse one pool and one store.
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Self

import dask

from wukong.backends.compute.base import ComputeBackend
from wukong.config import WukongConfig, load_config
from wukong.core import codec, defaults, futures, shuffles
from wukong.core.backends import create_compute
from wukong.core.executor import handle_invocation
from wukong.core.graph import (
    TaskGraph,
    build_task_graph,
    cycle_collection_paused,
    literal_results,
    pack_results,
    plan_budget_tasks,
    plans_frozen,
)
from wukong.core.job import HEARTBEAT_SECONDS, Job, alive_value
from wukong.core.partition import partition
from wukong.core.stores import Stores, share, unshare
from wukong.errors import ComputeError, ConfigError, GraphError, JobLostError, MissingKeyError, StorageError
from wukong.monitoring import dask_callbacks
from wukong.monitoring.report import JobReport
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

    Unless ``set_as_default=False``, the client is also Dask's scheduler while it is open: plain
    ``x.compute()``, ``dask.compute(x)`` and ``scheduler="wukong"`` run on it (as a
    ``distributed.Client`` does); ``x.compute(scheduler=client)`` names it outright.

    Attributes:
        config: the validated configuration.
        stores: the metadata and data stores (one object when one store plays both roles).
        compute_backend: the compute backend executors run on.
        last_job: the report of the most recent job, finished or failed.

    """

    asynchronous = False
    """Dask asks this of any scheduler called ``...Client``; a wukong client answers synchronously."""

    def __init__(
        self,
        compute: str | None = None,
        storage: str | None = None,
        *,
        set_as_default: bool = True,
        **settings: Any,
    ):
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
        self._holdings = futures.Holdings(self.stores.delete, self._read_held)
        self._heartbeat: threading.Thread | None = None
        self._closing = threading.Event()
        if set_as_default:
            defaults.set_default(self)

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
        try:
            compute.capabilities.delivery  # noqa: B018 (declarations that contradict fail here)
        except ConfigError:
            compute.close()
            raise
        return compute

    def get(self, dsk: Any, keys: Any, callbacks: Sequence[Any] | None = None, **kwargs: Any) -> Any:
        """Compute ``keys`` of graph ``dsk`` (Dask's scheduler protocol).

        ``callbacks`` are Dask's local callbacks for this compute; without them, the active ones
        (``with ProgressBar():``, ``Callback.register()``) hear of the job, as under Dask's own
        schedulers (see :mod:`wukong.monitoring.dask_callbacks`). Other keywords are ignored.
        """
        taken = dask_callbacks.requested(callbacks)
        try:
            return self._get(dsk, keys, taken)
        finally:
            dask_callbacks.release(taken, given=callbacks is not None)

    def persist(self, *collections: Any, optimize_graph: bool = True, **kwargs: Any) -> Any:
        """Compute collections into the store and return them rebuilt on futures of their outputs.

        Later computes of the returned collections, and of anything built from them, read those
        outputs from the store instead of computing them again (see :mod:`wukong.core.futures`).
        Also reached by ``dask.persist(x, scheduler=client)`` and ``x.persist()`` on the default
        client. One collection gives one collection; several (or one list) give them in order.
        """
        data = self.stores.data
        if data.capabilities.evicts:
            raise ConfigError(
                f"cannot persist into {data.describe()}: it may evict a value before its futures "
                "are done with it, and a later compute would find it gone; persist with a data "
                "store that keeps values until they are removed (redis, embedded, s3 as "
                "data_storage), or compute instead"
            )
        if len(collections) == 1 and isinstance(collections[0], (list, tuple)):
            # As Dask's persist calls it: one list of collections, a list back.
            return type(collections[0])(self._persist(collections[0], optimize_graph, kwargs))
        persisted = self._persist(collections, optimize_graph, kwargs)
        return persisted[0] if len(collections) == 1 else persisted

    def _persist(self, collections: Sequence[Any], optimize_graph: bool, kwargs: dict[str, Any]) -> tuple:
        # A partial has no __self__, so Dask takes its own persist path and calls it as a scheduler.
        into_store = functools.partial(self._persist_scheduler, **kwargs)
        return dask.persist(*collections, scheduler=into_store, optimize_graph=optimize_graph)

    def _persist_scheduler(
        self, dsk: Any, keys: Any, callbacks: Sequence[Any] | None = None, **_: Any
    ) -> Any:
        taken = dask_callbacks.requested(callbacks)
        try:
            return self._get(dsk, keys, taken, hold=True)
        finally:
            dask_callbacks.release(taken, given=callbacks is not None)

    @property
    def futures(self) -> dict[Any, int | None]:
        """Every key held in the store by a live future of this client, with its stored bytes."""
        return self._holdings.listing()

    def _read_held(self, store_key: str) -> Any:
        blob = self.stores.data.get(store_key)
        if blob is None:
            raise MissingKeyError(
                f"a persisted value is gone from {self.stores.data.describe()} ({store_key}): it "
                "expired after key_ttl or `wukong gc` removed it; persist the collection again",
                [store_key],
            )
        return blob if self.stores.objects_stored_as_is else codec.loads(blob)

    def _get(self, dsk: Any, keys: Any, callbacks: list[Any], hold: bool = False) -> Any:
        with plans_frozen():
            return self._get_planned(dsk, keys, callbacks, hold)

    def _get_planned(self, dsk: Any, keys: Any, callbacks: list[Any], hold: bool) -> Any:
        started = time.perf_counter()
        with cycle_collection_paused():
            graph, computed = self._task_graph(dsk, keys)
        literals = literal_results(graph)
        if len(literals) == len(graph.results):  # nothing to run: the values are in the graph
            return pack_results(keys, shuffles.by_requested_key(keys, computed, literals))
        built = time.perf_counter()
        observer = dask_callbacks.DaskCallbacks(callbacks, graph) if callbacks else None
        with cycle_collection_paused():
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
            callbacks=observer,
        )
        job.report.seconds.update(graph=built - started, partition=partitioned - built)
        error: BaseException | None = None
        try:
            if observer is not None:
                observer.start()
            job.submit()
            get_plugin_manager().hook.wukong_job_submitted(job=job.report)
            values = job.wait(collect=not hold)
        except BaseException as failure:
            error = failure
            job.report.error = f"{type(failure).__name__}: {failure}"
            raise
        finally:
            self.last_job = job.report
            if error is None:
                self._end(job, observer, hold)
            else:
                self._end_failed(job, observer, error)
        if hold:
            try:
                values = self._hold(job, keys, computed)
            except BaseException:
                self._drop_held(job)  # nothing holds them
                raise
        # A requested literal is the graph's own object, as under Dask's local schedulers.
        results = dict(zip((graph.keys[t] for t in graph.results), values, strict=True)) | literals
        return pack_results(keys, shuffles.by_requested_key(keys, computed, results))

    def _end(self, job: Job, observer: dask_callbacks.DaskCallbacks | None, hold: bool) -> None:
        """Clean a finished job up (which reads its last task records), then tell the callbacks."""
        ended = False
        try:
            self._finish(job, None, hold=hold)
            ended = True
        except BaseException:
            if hold:
                self._drop_held(job)
            raise
        finally:
            if observer is not None:
                observer.finish(errored=not ended)

    def _drop_held(self, job: Job) -> None:
        """Remove what a persist kept when no future will own it (a failure after its job ended)."""
        try:
            self.stores.delete([job.keys.held], job.held_outputs())
        except Exception:  # the failure on its way to the user says more; key_ttl ends these
            logger.warning("job %s: could not remove its persisted outputs", job.keys.job, exc_info=True)

    def _end_failed(
        self, job: Job, observer: dask_callbacks.DaskCallbacks | None, error: BaseException
    ) -> None:
        """The error reaches the user now; the clean-up goes on in the background (see Client.settle)."""
        try:
            if isinstance(error, ComputeError):
                self._restart_compute()
            cleanup = threading.Thread(
                target=self._finish, args=(job, error), name=f"wukong-cleanup-{job.keys.job}"
            )
            cleanup.start()
            with self._lock:
                self._cleanups.append(cleanup)
        finally:
            if observer is not None:
                observer.finish(errored=True)

    def _hold(self, job: Job, keys: Any, computed: Any) -> list[futures.Future]:
        """Futures for a persisting job's outputs, in the order of its results; its held mark beats on.

        Each future stands for the key the caller asked for (a shuffle rewrite may have computed
        it under another).
        """
        graph = job.graph
        results = [graph.keys[task] for task in graph.results]
        outputs = job.held_outputs()
        stored = dict(zip(results, zip(outputs, self.stores.data.sizes(outputs), strict=True), strict=True))
        computed_as = shuffles.by_requested_key(keys, computed, {key: key for key in results})
        self._start_heartbeat()
        made = self._holdings.hold(
            job.keys.job,
            job.keys.held,
            job.submitted,
            {asked: stored[key] for asked, key in computed_as.items()},
        )
        future_of = dict(zip(computed_as.values(), made, strict=True))
        return [future_of[key] for key in results]

    def _start_heartbeat(self) -> None:
        """While futures are held, refresh their jobs' held marks, as a waiting client does its alive mark."""
        with self._lock:
            if self._heartbeat is not None and self._heartbeat.is_alive():
                return
            self._heartbeat = threading.Thread(target=self._beat, name="wukong-heartbeat", daemon=True)
            self._heartbeat.start()

    def _beat(self) -> None:
        view = self.stores.scoped(None, self.config.key_ttl)

        def write(marks: dict[str, float]) -> None:
            now = time.time()
            view.metadata.put_many({mark: alive_value(submitted, now) for mark, submitted in marks.items()})

        while not self._closing.wait(HEARTBEAT_SECONDS):
            try:
                self._holdings.refresh(write)  # also removes the values of collected futures
            except Exception:  # the next beat tries again; a stale mark only lets `wukong gc` in
                logger.warning("could not refresh the marks of persisted values", exc_info=True)

    def _task_graph(self, dsk: Any, keys: Any) -> tuple[TaskGraph, Any]:
        """The graph to run for ``keys``, and the keys it computes them under.

        Keys held by this client's futures are read from the store. Where executors share no
        filesystem, Dask's disk shuffles run as tasks (which renames the keys downstream of them),
        and a graph that still shuffles on disk is refused.
        """
        try:
            return self._build(dsk, keys)
        except GraphError as error:
            self._holdings.explain(error.missing)  # a clearer error if a future's key is missing
            raise

    def _build(self, dsk: Any, keys: Any) -> tuple[TaskGraph, Any]:
        held = self._holdings.nodes()
        max_tasks = plan_budget_tasks(self.config.plan_memory_bytes)
        if self.compute_backend.capabilities.shares_filesystem:
            return build_task_graph(dsk, keys, held, max_tasks), keys
        dsk, computed = shuffles.as_task_shuffles(dsk, keys)
        graph = build_task_graph(dsk, computed, held, max_tasks)
        if on_disk := shuffles.disk_shuffle_tasks(graph):
            raise GraphError(shuffles.refusal(on_disk, self.compute_backend.describe()), on_disk)
        return graph, computed

    def _finish(self, job: Job, error: BaseException | None, hold: bool = False) -> None:
        try:
            job.cleanup(
                failed=error is not None,
                compute_broken=isinstance(error, ComputeError),
                lost=isinstance(error, JobLostError),
                hold=hold,
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
        """Finish clean-ups, stop the workers and close the store (an embedded store's server too).

        A client set as default stops being Dask's scheduler first.
        """
        defaults.unset_default(self)
        self.settle()
        self._closing.set()
        if self._heartbeat is not None:
            self._heartbeat.join()  # no refresh after the marks are removed
        self._holdings.close()  # every persisted value goes
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
            # Made inside a compute that named wukong: Dask's settings are not its business.
            _default_client = Client(set_as_default=False)
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


get = defaults.get
"""Dask's scheduler protocol on the default client: ``x.compute(scheduler=wukong.get)``.

The default client is the newest open client set as default, else the process's own.
"""
