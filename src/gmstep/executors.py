"""Where tasks run: in this process, in a pool of processes, or on a Dask cluster.

Every executor yields each task's :class:`~gmstep.engine.task.TaskResult` as the task finishes
(the torch backend's units are batches of one point's trials, :mod:`gmstep.engine.trial_batch`);
the order may differ between executors, the numbers never do. Two things make that exact, not just "equal to rounding":

- each task owns its random streams (see :mod:`gmstep.engine.streams`), so the order of execution
  does not matter;
- inside a task every BLAS call is single-threaded and the work is split into blocks of a fixed
  size (:data:`gmstep.engine.parallel.ROW_BLOCK`); a process spreads the blocks over its threads, and
  the thread count changes which core computes a block, never the block's bits.

``jobs = N > 1`` starts ``N`` worker processes (``forkserver`` where available, else ``spawn``:
both are safe with BLAS threads) that each use ``max(1, cores // N)`` threads, ignore SIGINT
(the parent handles it), keep their own :class:`~gmstep.engine.datasets.DataCache`, and get the
experiment once (not with every task). Tasks are submitted grouped by the data they share,
largest first within a group, with at most a few per worker in flight, so memory stays bounded
for sweeps of any length. ``scheduler`` sends the tasks to a Dask cluster (``"local"`` starts
one on this machine); Dask is imported only then (the optional extra ``gmstep[cluster]``).

Closing the generator (or an exception, e.g. :class:`gmstep.runner.Interrupted`, passing
through it) cancels the pending tasks and shuts the workers or the Dask client down.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from . import activations
from .constraints import POSITIVE
from .engine.datasets import DataCache
from .engine.parallel import set_threads, single_threaded_blas
from .engine.task import TaskResult, task_cost, task_data_key
from .engine.trial_batch import Unit, compute_unit, units
from .errors import ConfigError, GmstepError
from .experiment import Experiment
from .portable import check_picklable, portable_error, register_used, unpack, used_activations

Task = tuple[int, int]

#: Tasks in flight per worker (submitted but not finished).
IN_FLIGHT_PER_WORKER = 3
#: Seconds allowed to connect to a Dask scheduler.
CONNECT_TIMEOUT = 20


def usable_cores() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def check_request(jobs: int, scheduler: str | None = None, security: Any = None) -> None:
    """Pre-flight of an execution request, before anything is written: ``jobs`` is valid and, for
    a Dask scheduler address, Dask is installed and the scheduler answers (the connection is
    opened and closed again). A plain ``tcp://`` address that is not loopback gets a one-line
    warning on stderr (see :func:`open_address_warning`)."""
    jobs = POSITIVE.check("--jobs", jobs)
    if scheduler is None:
        return
    if not isinstance(scheduler, str) or not scheduler.strip():
        raise ConfigError("--scheduler", "must be 'local' or a Dask scheduler address like tls://host:8786")
    client_cls, _, _ = _import_dask()
    scheduler = scheduler.strip()
    if scheduler == "local":
        return
    warning = open_address_warning(scheduler)
    if warning:
        print(f"gmstep: warning: {warning}", file=sys.stderr)
    probe_scheduler(scheduler, security)


def probe_scheduler(scheduler: str, security: Any = None) -> None:
    """Open one connection to the scheduler (with the TLS handshake for ``tls://``) and close it,
    on a private event loop in a helper thread: a refused probe leaves Dask's shared event loop
    (which a later :class:`distributed.Client` uses) untouched, and it works inside a notebook."""
    from distributed.comm import connect
    from distributed.security import Security

    errors: list[BaseException] = []

    async def probe() -> None:
        args = (security if security is not None else Security()).get_connection_args("client")
        comm = await connect(scheduler, timeout=CONNECT_TIMEOUT, **args)
        await comm.close()

    def target() -> None:
        import asyncio

        try:
            asyncio.run(probe())
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
            errors.append(exc)

    thread = threading.Thread(target=target, name="gmstep-probe", daemon=True)
    thread.start()
    thread.join()
    if errors:
        exc = errors[0]
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError("--scheduler", f"cannot connect to the Dask scheduler at {scheduler}: {reason}")


def open_address_warning(address: str) -> str | None:
    """Why a scheduler address is an open door, or None: a plain ``tcp://`` (or protocol-less)
    address whose host is not loopback is neither encrypted nor authenticated."""
    import ipaddress

    proto, sep, rest = address.partition("://")
    if not sep:
        proto, rest = "tcp", address
    if proto != "tcp":
        return None
    host = rest.rsplit(":", 1)[0] if rest.count(":") == 1 or rest.startswith("[") else rest
    host = host.strip("[]").split("/")[0]
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return (f"{address} is plain TCP beyond this machine: whoever can reach it can run code on the workers; "
            "use a tls:// address with certificates (see docs/CLUSTER.md)")


def execute(
    exp: Experiment,
    tasks: Sequence[Task],
    jobs: int = 1,
    scheduler: str | None = None,
    security: Any = None,
) -> Iterator[TaskResult]:
    """Dispatch to the executor that ``jobs`` and ``scheduler`` ask for.

    Problems with the request itself (a bad ``jobs``, Dask missing) are raised here, before the
    first task runs.
    """
    jobs = POSITIVE.check("--jobs", jobs)
    tasks = list(tasks)
    if scheduler is not None:
        if not isinstance(scheduler, str) or not scheduler.strip():
            raise ConfigError("--scheduler", "must be 'local' or a Dask scheduler address like tcp://host:8786")
        return dask_cluster(exp, tasks, jobs, scheduler.strip(), security)
    if jobs > 1 and len(tasks) > 1:
        return processes(exp, tasks, jobs)
    return serial(exp, tasks)


def serial(exp: Experiment, tasks: Sequence[Task]) -> Iterator[TaskResult]:
    """Tasks one after the other in this process (on all its cores), reusing drawn data."""
    cache = DataCache()
    with single_threaded_blas():
        for point_index, trials in units(exp, tasks):
            yield from compute_unit(exp, point_index, trials, cache)


def schedule(exp: Experiment, tasks: Sequence[Task]) -> list[Task]:
    """The submission order: tasks sharing drawn data together (groups in their first
    appearance), largest first within a group (a longest-first schedule balances the workers)."""
    groups: dict[str, list[Task]] = {}
    for task in tasks:
        groups.setdefault(task_data_key(exp, *task), []).append(task)
    cost: dict[int, float] = {}
    order: list[Task] = []
    for group in groups.values():
        for point_index, _ in group:
            if point_index not in cost:
                cost[point_index] = task_cost(exp, point_index)
        order.extend(sorted(group, key=lambda t: -cost[t[0]]))  # stable: trials stay in order
    return order


# ----------------------------------------------------------------------------- worker processes

_worker: dict[str, Any] = {}


def _init_worker(spec: dict[str, Any], threads: int, used: dict[str, activations.Activation]) -> None:
    """Runs once in every worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into a clean stop
    import numpy as np
    from threadpoolctl import threadpool_limits

    np.seterr(all="ignore")  # problems are recorded per row (status), not printed
    threadpool_limits(1, user_api="blas")  # for good: tasks parallelise over blocks instead
    set_threads(threads)
    register_used(used)
    _worker["exp"] = Experiment.from_dict(spec)
    _worker["cache"] = DataCache()


def _worker_task(point_index: int, trials: tuple[int, ...]) -> Any:
    try:
        return compute_unit(_worker["exp"], point_index, trials, _worker["cache"])
    except GmstepError as exc:
        return ("gmstep-error", portable_error(exc))


def _context() -> multiprocessing.context.BaseContext:
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["gmstep.executors"])  # import NumPy/SciPy once, not per worker
        return ctx
    return multiprocessing.get_context("spawn")


def processes(exp: Experiment, tasks: Sequence[Task], jobs: int) -> Iterator[TaskResult]:
    """Tasks in ``jobs`` worker processes of this machine."""
    used = used_activations(exp)
    check_picklable(used)
    order = units(exp, schedule(exp, tasks))
    workers = min(jobs, len(order))
    threads = max(1, usable_cores() // workers)
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=_context(),
        initializer=_init_worker,
        initargs=(exp.to_dict(), threads, used),
    )
    return _drive_pool(pool, order, workers)


def _drive_pool(pool: ProcessPoolExecutor, order: list[Unit], jobs: int) -> Iterator[TaskResult]:
    pending: set[Future] = set()
    finished = False
    try:
        it = iter(order)
        limit = max(2, IN_FLIGHT_PER_WORKER * jobs)
        for task in it:
            pending.add(pool.submit(_worker_task, *task))
            if len(pending) >= limit:
                break
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in done:
                try:
                    result = fut.result()
                except BrokenProcessPool:
                    raise GmstepError(
                        "a worker process stopped unexpectedly (killed, or out of memory?); the finished "
                        "tasks are kept: rerun with --resume, with fewer --jobs if memory is short"
                    ) from None
                done_tasks = unpack(result)
                nxt = next(it, None)
                if nxt is not None:
                    pending.add(pool.submit(_worker_task, *nxt))
                yield from done_tasks
        finished = True
    finally:
        _stop_pool(pool, pending, graceful=finished)


def _stop_pool(pool: ProcessPoolExecutor, pending: set[Future], graceful: bool) -> None:
    """Shut the pool down; after an error or an interrupt, cancel and terminate at once."""
    if graceful:
        pool.shutdown(wait=True)
        return
    for fut in pending:
        fut.cancel()
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in procs:  # a running task could take minutes: do not wait for it
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(timeout=10)


# ----------------------------------------------------------------------------- Dask

_dask_worker: dict[str, Any] = {"local": threading.local(), "specs": {}}


def _dask_configure(threads: int) -> None:
    """Runs in a Dask worker process before its first task (and sets its thread budget)."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(1, user_api="blas")
    set_threads(threads)
    _dask_worker["configured"] = True


def _dask_task(spec_json: str, point_index: int, trials: tuple[int, ...],
               used: dict[str, activations.Activation]) -> Any:
    """One unit on a Dask worker: the experiment is rebuilt once per worker process."""
    import json

    import numpy as np

    if not _dask_worker.get("configured"):
        _dask_configure(1)  # a worker that joined after the set-up: one thread per task
    try:
        register_used(used)
        specs = _dask_worker["specs"]
        exp = specs.get(spec_json)
        if exp is None:
            while len(specs) >= 8:  # a long-lived cluster serves many sweeps: keep the latest
                specs.pop(next(iter(specs)))
            exp = specs[spec_json] = Experiment.from_dict(json.loads(spec_json))
        local = _dask_worker["local"]  # one data cache per worker thread
        if not hasattr(local, "cache"):
            local.cache = DataCache()
        with np.errstate(all="ignore"):
            return compute_unit(exp, point_index, trials, local.cache)
    except GmstepError as exc:
        return ("gmstep-error", portable_error(exc))


def _import_dask():
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise ConfigError("--scheduler", "needs Dask: pip install 'gmstep[cluster]'") from None
    return Client, LocalCluster, as_completed


def dask_cluster(exp: Experiment, tasks: Sequence[Task], jobs: int, scheduler: str,
                 security: Any = None) -> Iterator[TaskResult]:
    """Tasks on a Dask cluster: ``"local"`` starts one here (``jobs`` workers if ``jobs > 1``,
    else one per core; it listens on the loopback address only), any other value is a scheduler
    address such as ``tls://host:8786`` (``security``: a ``distributed.security.Security``; None
    uses Dask's configuration, e.g. ``DASK_DISTRIBUTED__COMM__TLS__*``)."""
    client_cls, cluster_cls, as_completed = _import_dask()
    return _drive_dask(exp, tasks, jobs, scheduler, client_cls, cluster_cls, as_completed, security)


def _connect_remote(scheduler: str, client_cls, security: Any = None):
    kwargs = {"timeout": CONNECT_TIMEOUT}
    if security is not None:
        kwargs["security"] = security
    try:
        return client_cls(scheduler, **kwargs)
    except Exception as exc:  # noqa: BLE001 - OSError, TimeoutError, TLS and address errors alike
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError("--scheduler", f"cannot connect to the Dask scheduler at {scheduler}: {reason}") from None


def _connect(scheduler: str, jobs: int, client_cls, cluster_cls, security: Any = None):
    if scheduler == "local":
        workers = jobs if jobs > 1 else usable_cores()
        extra = {"security": security, "protocol": "tls://"} if security is not None else {}
        cluster = cluster_cls(  # loopback only: nothing beyond this machine can reach it
            processes=True, n_workers=workers, threads_per_worker=1, host="127.0.0.1",
            dashboard_address=None, **extra,
        )
        try:
            return client_cls(cluster), cluster
        except BaseException:
            cluster.close()
            raise
    return _connect_remote(scheduler, client_cls, security), None


def _workers_info(client) -> dict[str, dict[str, Any]]:
    try:
        return client.scheduler_info(n_workers=-1).get("workers", {})
    except TypeError:  # Dask before 2025: every worker by default
        return client.scheduler_info().get("workers", {})


def _configure_workers(client) -> None:
    """Give every worker process ``max(1, cores of its host // worker threads on that host)``
    threads per task, so the workers of a host share its cores without oversubscription."""
    info = _workers_info(client)
    cores = client.run(usable_cores)
    per_host: dict[str, int] = {}
    for addr, w in info.items():
        per_host[w.get("host", addr)] = per_host.get(w.get("host", addr), 0) + int(w.get("nthreads", 1))
    by_threads: dict[int, list[str]] = {}
    for addr, w in info.items():
        host = w.get("host", addr)
        threads = max(1, int(cores.get(addr, 1)) // max(1, per_host[host]))
        by_threads.setdefault(threads, []).append(addr)
    for threads, addrs in by_threads.items():
        client.run(_dask_configure, threads, workers=addrs)


def _drive_dask(exp, tasks, jobs, scheduler, client_cls, cluster_cls, as_completed,
                security: Any = None) -> Iterator[TaskResult]:
    import json

    from distributed import KilledWorker as killed_worker

    client = cluster = None
    pending: list[Any] = []
    try:
        client, cluster = _connect(scheduler, jobs, client_cls, cluster_cls, security)
        _configure_workers(client)
        spec_json = json.dumps(exp.to_dict(), sort_keys=True)
        used = used_activations(exp)
        order = units(exp, schedule(exp, tasks))
        run_id = uuid.uuid4().hex[:8]
        it = iter(order)

        def limit() -> int:  # workers may join (or leave) while the sweep runs
            threads = sum(client.nthreads().values())
            return max(2 * IN_FLIGHT_PER_WORKER, IN_FLIGHT_PER_WORKER * threads)

        def submit(unit: Unit):
            return client.submit(
                _dask_task, spec_json, unit[0], unit[1], used,
                key=f"gmstep-{exp.name}-{unit[0]}-{unit[1][0]}-{run_id}", pure=False,
            )

        cap, checked = limit(), time.monotonic()
        pending = [submit(t) for _, t in zip(range(cap), it, strict=False)]
        queue = as_completed(pending)
        for fut in queue:
            pending.remove(fut)
            try:
                result = fut.result()
            except killed_worker as exc:
                first = (str(exc).strip().splitlines() or [""])[0]
                raise GmstepError(
                    f"Dask gave up on a task whose workers kept dying ({first}); the finished tasks are kept: "
                    "rerun with --resume"
                ) from None
            done_tasks = unpack(result)
            if time.monotonic() - checked > 5.0:
                cap, checked = limit(), time.monotonic()
            while len(pending) < cap:
                nxt = next(it, None)
                if nxt is None:
                    break
                new = submit(nxt)
                pending.append(new)
                queue.add(new)
            yield from done_tasks
    finally:
        if client is not None:
            try:
                if pending:
                    client.cancel(pending)
            finally:
                client.close()
        if cluster is not None:
            cluster.close()
