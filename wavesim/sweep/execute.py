"""Running a sweep: in this process, on a dask.distributed ``LocalCluster``, or on any scheduler.

:func:`run_sweep` writes the store's template (or reopens it to resume), hands the members that
are not done to an executor, and records every result as it comes back (``as_completed``), with
a progress bar over members. There is no scheduler of our own: dask.distributed places the
members on workers, retries those whose worker died, and the same code runs on a laptop's
``LocalCluster``, on SLURM through dask-jobqueue or on Kubernetes (pass their ``Client``, or the
scheduler's address).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["SweepReport", "run_sweep"]

#: Seconds between updates of the store's progress attributes (n_done, ...) during a sweep.
PROGRESS_ATTR_INTERVAL = 2.0


@dataclass
class SweepReport:
    """What a call of :func:`run_sweep` did.

    Attributes
    ----------
    store : pathlib.Path
    name : str
    members : int
        Members of the sweep.
    done, failed, pending : int
        Members in each state in the store at the end (earlier runs included).
    computed : list of int
        Members whose result arrived in this call, in order of arrival.
    failures : dict of int to str
        The members that failed in this call, with their errors.
    wall_time : float
        Seconds for the whole call (template, cluster start-up and shut-down included).
    compute_time : float
        Seconds from the first member handed out to the last result.
    executor : str
        ``"serial"``, ``"LocalCluster(N workers x T threads)"`` or the scheduler's address.
    """

    store: Path
    name: str
    members: int
    done: int
    failed: int
    pending: int
    computed: list[int] = field(default_factory=list)
    failures: dict[int, str] = field(default_factory=dict)
    wall_time: float = 0.0
    compute_time: float = 0.0
    executor: str = "serial"

    @property
    def complete(self) -> bool:
        """No member is pending (every member is done or failed)."""
        return self.pending == 0

    @property
    def members_per_s(self) -> float:
        """Members computed per second of :attr:`compute_time`."""
        return len(self.computed) / self.compute_time if self.compute_time > 0 else float("nan")

    def __str__(self) -> str:
        state = "complete" if self.complete else "PARTIAL"
        if self.computed:
            ran = (f"{len(self.computed)} computed in {self.compute_time:.1f} s "
                   f"({self.members_per_s:.2f} members/s) on {self.executor}")  # fmt: skip
        else:
            ran = "0 computed (every member was done)"
        lines = [
            f"sweep {self.name!r} {state}: {self.members} members, {self.done} done, "
            f"{self.failed} failed, {self.pending} pending; {ran}, {self.wall_time:.1f} s in "
            f"all -> {self.store}"
        ]
        for i, err in list(self.failures.items())[:5]:
            lines.append(f"  member {i} failed: {err}")
        if len(self.failures) > 5:
            lines.append(f"  ... and {len(self.failures) - 5} more (see status and error)")
        return "\n".join(lines)


def default_workers() -> int:
    """The CPUs this process may use (the default number of ``LocalCluster`` workers)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def run_sweep(
    sweep,
    store,
    *,
    workers: int | None = None,
    threads_per_worker: int = 1,
    scheduler: str | None = None,
    client=None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    callback: Callable | None = None,
    write_from: str = "workers",
    kernel_threads: int = 1,
    dashboard: bool = False,
    cluster_options: dict | None = None,
    overrides: Iterable[str] = (),
) -> SweepReport:
    """Run (or resume) a sweep and write its zarr store.

    Parameters
    ----------
    sweep : SweepSpec or path
        A :class:`~wavesim.sweep.SweepSpec` or the path of a sweep TOML file.
    store : path
        The sweep's zarr (v3) store.
    workers : int, optional
        Worker processes of the ``LocalCluster`` started for this sweep (default: the CPUs this
        process may use). ``0`` runs the members one after the other in this process (no dask).
    threads_per_worker : int, default 1
        Threads per worker process (members run at the same time in one process; the kernels
        hold the GIL, so processes, not threads, give parallel speed-up).
    scheduler : str, optional
        Address of a running dask scheduler (``"tcp://host:8786"``) or the path of its
        scheduler file; ``"serial"`` is the same as ``workers=0``. Workers must see the store's
        path (a shared file system), or use ``write_from="client"``.
    client : distributed.Client, optional
        Use this client (e.g. of a ``dask_jobqueue.SLURMCluster``); it is not closed.
    resume : bool
        Continue the sweep in an existing ``store``: members already done are skipped (pending
        and failed ones run). The store must come from the same sweep (same base scenario, axes,
        record and metrics); a missing store is created.
    overwrite : bool
        Replace an existing store.
    progress : bool
        A progress bar over members on stderr.
    callback : callable, optional
        ``callback(result)`` with each :class:`~wavesim.sweep.member.MemberResult`, after it is
        recorded in the store. An exception raised there (KeyboardInterrupt included) stops the
        sweep like Ctrl-C.
    write_from : {"workers", "client"}
        Who writes a member's data: the worker that computed it (into its own chunks), or this
        process, from the arrays the worker returns (for workers without the store's file
        system).
    kernel_threads : int, default 1
        numba threads per member (``NUMBA_NUM_THREADS`` of the ``LocalCluster`` workers).
    dashboard : bool
        Serve the ``LocalCluster``'s dashboard (needs bokeh); its link is printed.
    cluster_options : dict, optional
        Further ``distributed.LocalCluster`` arguments (e.g. ``memory_limit="2GiB"``).
    overrides : iterable of str
        Base-scenario overrides (``"run.duration=20"``) when ``sweep`` is a path.

    Returns
    -------
    SweepReport

    Raises
    ------
    KeyboardInterrupt
        After Ctrl-C (or from ``callback``): running members are cancelled, the cluster is shut
        down and the store is left consistent (members done stay done, the others pending,
        ``complete`` false); continue with ``resume=True``.
    FileExistsError
        When ``store`` exists and neither ``resume`` nor ``overwrite`` is given.
    """
    from wavesim.sweep.spec import SweepSpec, load_sweep
    from wavesim.sweep.template import SweepStore

    t_start = time.perf_counter()
    spec = sweep if isinstance(sweep, SweepSpec) else load_sweep(sweep, overrides)
    if write_from not in ("workers", "client"):
        raise ValueError(f"write_from must be 'workers' or 'client', got {write_from!r}")
    if workers is not None and (isinstance(workers, bool) or int(workers) != workers
                                or workers < 0):  # fmt: skip
        raise ValueError(
            f"workers must be an integer >= 0 (0: run in this process), got {workers!r}"
        )
    path = Path(store).expanduser()
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other")
    if resume and path.exists():
        sweep_store = SweepStore.open(path, spec)
    else:
        if path.exists() and not overwrite:
            raise FileExistsError(
                f"{path} already exists: resume the sweep in it (--resume, resume=True) or "
                "replace it (--overwrite, overwrite=True)"
            )
        sweep_store = SweepStore.create(spec, path, overwrite=overwrite)

    status = sweep_store.status()
    todo = [i for i in range(spec.members) if status[i] != "done"]
    report = SweepReport(path, spec.name, spec.members, 0, 0, 0)
    serial = workers == 0 or scheduler == "serial"
    sweep_store.update_progress()

    from tqdm import tqdm

    bar = tqdm(total=spec.members, initial=spec.members - len(todo), unit="member",
               desc=spec.name, disable=not progress or not todo)  # fmt: skip
    last_attrs = [time.perf_counter()]

    def record(result) -> None:
        sweep_store.set_result(result.index, result.status, error=result.error,
                               elapsed=result.elapsed, worker=result.worker,
                               data=result.data)  # fmt: skip
        report.computed.append(result.index)
        if result.status == "failed":
            report.failures[result.index] = result.error
            bar.set_postfix(failed=len(report.failures), refresh=False)
        bar.update(1)
        now = time.perf_counter()
        if now - last_attrs[0] >= PROGRESS_ATTR_INTERVAL:
            sweep_store.update_progress()
            last_attrs[0] = now
        if callback is not None:
            callback(result)

    def task(i):
        from wavesim.sweep.member import MemberTask

        target = str(path.resolve()) if write_from == "workers" or serial else None
        return MemberTask(i, spec.member_scenario(i), spec.record, spec.metrics,
                          spec.analysis_start, target, kernel_threads)  # fmt: skip

    t_compute = time.perf_counter()
    try:
        if serial:
            from wavesim.sweep.member import run_member

            report.executor = "serial"
            for i in todo:
                record(run_member(task(i)))
        elif todo:
            t_compute = _run_distributed(spec, todo, task, record, report, workers=workers,
                                         threads_per_worker=threads_per_worker,
                                         scheduler=scheduler, client=client,
                                         kernel_threads=kernel_threads, dashboard=dashboard,
                                         cluster_options=cluster_options)  # fmt: skip
        report.compute_time = time.perf_counter() - t_compute if todo else 0.0
    finally:
        bar.close()
        counts = sweep_store.update_progress()
        report.done, report.failed, report.pending = (counts[s] for s in STATUS_ORDER)
        report.wall_time = time.perf_counter() - t_start
    return report


STATUS_ORDER = ("done", "failed", "pending")


def _run_distributed(spec, todo, task, record, report, *, workers, threads_per_worker, scheduler,
                     client, kernel_threads, dashboard, cluster_options) -> float:  # fmt: skip
    """Hand ``todo`` to dask.distributed; return the time the first member was handed out."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - distributed is a dependency of the extra
        raise ImportError(
            "running a sweep on workers needs dask.distributed: pip install 'wavesim[distributed]'"
            " (or run it in this process with workers=0)"
        ) from exc

    cluster = None
    own_client = client is None
    try:
        if client is not None:
            report.executor = f"client {client.scheduler.address}"
        elif scheduler is not None:
            if Path(scheduler).is_file():
                client = Client(scheduler_file=str(scheduler), timeout="30s", set_as_default=False)
            else:
                client = Client(scheduler, timeout="30s", set_as_default=False)
            report.executor = f"scheduler {client.scheduler.address}"
        else:
            n = default_workers() if workers is None else int(workers)
            options = {
                "n_workers": n,
                "threads_per_worker": int(threads_per_worker),
                "processes": True,
                "dashboard_address": ":8787" if dashboard else None,
                # without a dashboard the scheduler still serves health checks over HTTP: on
                # any free port, not 8787 (which another cluster may hold)
                "scheduler_kwargs": {} if dashboard else {"dashboard_address": ":0"},
                "silence_logs": logging.ERROR,
                "env": {"NUMBA_NUM_THREADS": str(int(kernel_threads))},
                **(cluster_options or {}),
            }
            cluster = LocalCluster(**options)
            client = Client(cluster, set_as_default=False)
            # Ctrl-C in a terminal reaches the whole process group: this process cancels the
            # members and shuts the workers down, so they need not (and should not) react.
            from wavesim.sweep._worker import IgnoreInterrupt

            client.register_plugin(IgnoreInterrupt())
            report.executor = f"LocalCluster({n} workers x {int(threads_per_worker)} threads)"
            if dashboard:
                print(f"dask dashboard: {client.dashboard_link}", flush=True)
        token = uuid.uuid4().hex[:8]
        t0 = time.perf_counter()
        from wavesim.sweep.member import MemberResult, run_member

        futures = [
            client.submit(run_member, task(i), key=f"wavesim-sweep-{token}-{i}", pure=False)
            for i in todo
        ]
        index = {f.key: i for f, i in zip(futures, todo, strict=True)}
        try:
            for fut in as_completed(futures, loop=client.loop):
                try:
                    result = fut.result()
                except Exception as exc:  # noqa: BLE001 - e.g. KilledWorker: record, go on
                    result = MemberResult(index[fut.key], "failed", f"{type(exc).__name__}: {exc}")
                fut.release()
                record(result)
        except BaseException:
            client.cancel(futures)
            raise
        return t0
    finally:
        if own_client and client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
