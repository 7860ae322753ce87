"""The coarse time series (emu/timeline.py) against a fake kernel: grid points on a
doubling step, each holding the state before the first window starting at or after it,
never more than MAX_POINTS, and a last point at the end of the run. No MPI."""

import random

from emu.timeline import MAX_POINTS, Timeline


class FakePolicy:
    def __init__(self):
        self.pending = 0

    def luf_pending_pages(self) -> int:
        return self.pending


class FakeKernel:
    def __init__(self):
        self.ipis_by_source = {"reclaim": 0, "munmap": 0}
        self.nodes = 2
        self.free = [100, 200]
        self.alloc = self
        self.policy = FakePolicy()

    def free_pages(self, node: int) -> int:
        return self.free[node]


def _run(windows: int, quantum: int, seed: int):
    """Windows starting at random multiples of the quantum (idle gaps skipped); the state
    changes in every window. Returns the timeline and the state seen at each start."""
    rng = random.Random(seed)
    k = FakeKernel()
    tl = Timeline(k, quantum)
    seen, start = [], 0
    for _ in range(windows):
        tl.sample(start)
        seen.append((start, sum(k.ipis_by_source.values()), list(k.free), k.policy.pending))
        k.ipis_by_source["reclaim"] += rng.randrange(3)     # the window runs
        k.free[rng.randrange(2)] -= 1
        k.policy.pending = rng.randrange(50)
        start += quantum * rng.choice((1, 1, 1, 2, 7, 40))
    return tl.result(start), seen, start, k


def _state_at(seen, t):
    """The state sampled by the first window starting at or after grid time t."""
    return next(s for s in seen if s[0] >= t)[1:]


def test_points_hold_the_state_of_their_grid_time():
    out, seen, end, k = _run(3000, 1000, 1)
    assert MAX_POINTS // 2 <= len(out["t_ns"]) <= MAX_POINTS + 1
    step = out["step_ns"]
    grid = out["t_ns"][:-1]
    assert grid == list(range(0, grid[-1] + 1, step))      # regular, starting at 0
    assert out["t_ns"][-1] == end > grid[-1]
    for i, t in enumerate(grid):
        ipis, free, pending = _state_at(seen, t)
        assert (out["ipis"][i], out["free_pages"][i], out["luf_pending"][i]) == \
            (ipis, free, pending), t
    assert (out["ipis"][-1], out["free_pages"][-1], out["luf_pending"][-1]) == \
        (sum(k.ipis_by_source.values()), k.free, k.policy.pending)


def test_short_run_keeps_the_window_step():
    out, _, end, _ = _run(20, 500, 2)
    assert out["step_ns"] == 500 and out["t_ns"][0] == 0 and out["t_ns"][-1] == end
    assert all(b > a for a, b in zip(out["t_ns"], out["t_ns"][1:], strict=False))


def test_same_times_give_the_same_series():
    assert _run(1500, 1000, 3)[0] == _run(1500, 1000, 3)[0]
