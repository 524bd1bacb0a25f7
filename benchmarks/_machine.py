"""What the benchmarks share: the CPU's name, the CPU share of other processes, table rendering.

Imported by the benchmark scripts (``python benchmarks/bench_*.py`` puts this folder on the path).
"""

from __future__ import annotations

import math
import os
import platform
import resource
import time


class CpuShare:
    """Share of the machine's CPU time used by *other* processes since construction.

    From ``/proc/stat`` (busy + steal time of all CPUs) minus this process's and its children's
    CPU time, over wall time × CPUs; NaN where ``/proc/stat`` is missing. Other load makes
    2-thread figures low and noisy (a per-step barrier waits for a descheduled thread), so every
    benchmark row reports it.
    """

    def __init__(self):
        self.t0, self.busy0, self.own0 = self._snapshot()

    @staticmethod
    def _snapshot():
        busy = math.nan
        try:
            with open("/proc/stat") as f:
                fields = [int(x) for x in f.readline().split()[1:9]]
            user, nice, system, _idle, _iowait, irq, softirq, steal = fields
            busy = (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError):
            pass
        own = sum(
            r.ru_utime + r.ru_stime
            for r in (
                resource.getrusage(resource.RUSAGE_SELF),
                resource.getrusage(resource.RUSAGE_CHILDREN),
            )
        )
        return time.perf_counter(), busy, own

    def others(self) -> float:
        t1, busy1, own1 = self._snapshot()
        wall = (t1 - self.t0) * (os.cpu_count() or 1)
        return max(0.0, (busy1 - self.busy0) - (own1 - self.own0)) / max(wall, 1e-9)


def fmt(x, spec=".0f", missing="-"):
    """``format(x, spec)``, or ``missing`` for None and NaN."""
    return missing if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else :func:`platform.processor`."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def render(rows, columns) -> str:
    """A text table: ``columns`` are ``(header, unit, cell(row) -> str)``; a rule under the units,
    the first column left-aligned, the others right-aligned."""
    cells = [[h for h, _, _ in columns], [u for _, u, _ in columns]]
    cells += [[cell(r) for _, _, cell in columns] for r in rows]
    widths = [max(len(c) for c in col) for col in zip(*cells, strict=True)]
    cells.insert(2, ["-" * w for w in widths])
    lines = []
    for r in cells:
        padded = [c.rjust(w) for c, w in zip(r, widths, strict=True)]
        padded[0] = r[0].ljust(widths[0])
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)
