"""A coarse time series of the coordinator's state, for plots (`runs[i].timeline`).

Sampled on a fixed grid of simulated time at window starts: the value at grid time g is
the coordinator's state at the first window start at or after g, when it has done
everything earlier than that start and nothing later. The grid starts at one
quantum and doubles, dropping every other point, whenever more than MAX_POINTS are
held, so a run keeps MAX_POINTS/2..MAX_POINTS points.
Everything depends on simulated time only, so the series is the same for any placement,
and sampling only reads state.
"""

MAX_POINTS = 500


class Timeline:
    """Cumulative IPIs (as the coordinator counts them by source), free pages per node
    (buddy pages, as NR_FREE_PAGES) and pages still carrying a LUF key."""

    def __init__(self, kernel, step_ns: int):
        self.k = kernel
        self.step = step_ns
        self.next_t = 0
        self.t: list[int] = []
        self.ipis: list[int] = []
        self.free: list[list[int]] = []
        self.luf: list[int] = []

    def state(self) -> tuple[int, list[int], int]:
        k = self.k
        return (sum(k.ipis_by_source.values()),
                [k.alloc.free_pages(n) for n in range(k.nodes)],
                k.policy.luf_pending_pages())

    def sample(self, now: int) -> None:
        """Record every grid point up to `now`, a window boundary, with the state now."""
        if now < self.next_t:
            return
        ipis, free, luf = self.state()
        while self.next_t <= now:
            self.t.append(self.next_t)
            self.ipis.append(ipis)
            self.free.append(free)
            self.luf.append(luf)
            if len(self.t) > MAX_POINTS:
                self._coarsen()
            self.next_t = (self.t[-1] // self.step + 1) * self.step

    def _coarsen(self) -> None:
        self.step *= 2
        keep = [i for i, t in enumerate(self.t) if t % self.step == 0]
        self.t = [self.t[i] for i in keep]
        self.ipis = [self.ipis[i] for i in keep]
        self.free = [self.free[i] for i in keep]
        self.luf = [self.luf[i] for i in keep]

    def result(self, end_ns: int) -> dict:
        """The series up to `end_ns` (the last window's end), ending with a point there."""
        self.sample(end_ns)
        out = {"step_ns": self.step, "t_ns": list(self.t), "ipis": list(self.ipis),
               "free_pages": [list(f) for f in self.free], "luf_pending": list(self.luf)}
        if not self.t or self.t[-1] < end_ns:
            ipis, free, luf = self.state()
            out["t_ns"].append(end_ns)
            out["ipis"].append(ipis)
            out["free_pages"].append(free)
            out["luf_pending"].append(luf)
        return out
