"""Where does the time go? A per-op profiler for forward and backward passes.

    with tv.profiler.profile() as prof:
        loss = model(x).sum(); loss.backward()
    print(prof.table())

While active it times every ``Function.apply`` (forward) and the backward of every op
recorded in that window, summed per op class. On a GPU it synchronises around each op
(``sync=True``), which makes the run slower but the times true.
"""
import time
from collections import defaultdict

from . import backend
from .tensor import Function


class profile:
    """Context manager that accumulates forward/backward seconds and call counts per op."""

    def __init__(self, sync=True):
        self.sync = sync
        self.forward = defaultdict(float)
        self.backward = defaultdict(float)
        self.calls = defaultdict(int)

    def _now(self, xp):
        if self.sync and xp is not None and xp.__name__ == "cupy":
            xp.cuda.Device().synchronize()
        return time.perf_counter()

    def __enter__(self):
        original = Function.__dict__["apply"].__func__
        self._original = original
        prof = self

        def timed_apply(cls, *inputs, **options):
            xp = backend.array_module(next((t.data for t in inputs if hasattr(t, "data")), 0))
            start = prof._now(xp)
            out = original(cls, *inputs, **options)
            name = cls.__name__
            prof.forward[name] += prof._now(xp) - start
            prof.calls[name] += 1
            ctx = out._ctx
            if ctx is not None:
                inner = ctx.backward

                def timed_backward(g):
                    t0 = prof._now(xp)
                    result = inner(g)
                    prof.backward[name] += prof._now(xp) - t0
                    return result
                ctx.backward = timed_backward
            return out

        Function.apply = classmethod(timed_apply)
        return self

    def __exit__(self, *exc):
        Function.apply = classmethod(self._original)

    def totals(self):
        """(op name, calls, forward s, backward s) sorted by total time, largest first."""
        names = set(self.forward) | set(self.backward)
        rows = [(n, self.calls[n], self.forward[n], self.backward[n]) for n in names]
        return sorted(rows, key=lambda r: -(r[2] + r[3]))

    def table(self, steps=1):
        """A text table of milliseconds per step (divide totals by ``steps``)."""
        rows = self.totals()
        total = sum(r[2] + r[3] for r in rows) or 1.0
        lines = [f"{'op':<16}{'calls':>7}{'fwd ms':>9}{'bwd ms':>9}{'share':>8}"]
        for name, calls, f, b in rows:
            lines.append(f"{name:<16}{calls // steps:>7}{1e3 * f / steps:>9.1f}{1e3 * b / steps:>9.1f}"
                         f"{100 * (f + b) / total:>7.1f}%")
        lines.append(f"{'total':<16}{'':>7}{1e3 * sum(r[2] for r in rows) / steps:>9.1f}"
                     f"{1e3 * sum(r[3] for r in rows) / steps:>9.1f}")
        return "\n".join(lines)
