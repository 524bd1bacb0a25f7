"""dask.distributed plugins for the workers of a sweep's own ``LocalCluster`` (imports
distributed, so it is imported only when a sweep runs on workers)."""

from __future__ import annotations

import signal
import threading

from distributed.diagnostics.plugin import WorkerPlugin


class IgnoreInterrupt(WorkerPlugin):
    """The worker processes ignore SIGINT.

    Ctrl-C in a terminal reaches the whole process group; the process that runs the sweep then
    cancels the members and shuts the workers down, so they should not react themselves (each
    would print a KeyboardInterrupt traceback).
    """

    name = "wavesim-sweep-ignore-sigint"
    idempotent = True

    def setup(self, worker):
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
