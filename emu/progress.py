"""Rank 0's progress display during a run, driven by the engine's per-window hook.

A live line rewritten in place when stderr is a terminal, a plain line every 10 s of
wall time otherwise. Work done is the sum of the work units the CPUs publish each window
(workload.program.work_units: tagged steps such as tokens, or iterations), so it lags
one window. The hook costs one clock read per window until a line is due.
"""

import os
import sys
import time

from emu import protocol as P

LIVE_INTERVAL_S = 0.5
LINES_INTERVAL_S = 10.0
# EMU_PROGRESS=live forces the live line (under mpirun rank 0's stderr is a pipe even
# when mpirun's is a terminal); EMU_PROGRESS_INTERVAL_S overrides the interval (tests).
MODE_ENV, INTERVAL_ENV = "EMU_PROGRESS", "EMU_PROGRESS_INTERVAL_S"


def _duration(s: float) -> str:
    s = int(s + 0.5)
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Progress:
    """The on_window hook: `progress(window_start_ns)`; `finish()` after the run."""

    def __init__(self, policy: str, engine, ncpus: int, expected: int, unit: str,
                 stream=None):
        self.stream = stream or sys.stderr
        self.live = os.environ.get(MODE_ENV) == "live" or self.stream.isatty()
        default = LIVE_INTERVAL_S if self.live else LINES_INTERVAL_S
        self.interval = float(os.environ.get(INTERVAL_ENV) or default)
        self.policy, self.engine, self.ncpus = policy, engine, ncpus
        self.expected, self.unit = expected, unit
        self.t0 = time.monotonic()
        self.due = self.t0 + self.interval
        self.shown = False

    def __call__(self, start_ns: int) -> None:
        now = time.monotonic()
        if now < self.due:
            return
        self.due = now + self.interval
        self._write(self.line(start_ns, now - self.t0))

    def line(self, start_ns: int, elapsed: float) -> str:
        parts = [f"emu: {self.policy}: simulated {start_ns / 1e6:,.3f} ms"]
        done = int(self.engine.pub[:self.ncpus, P.PUB_PROGRESS].sum())
        if self.expected:
            parts.append(f"{100 * done / self.expected:.1f}% ({done:,}/{self.expected:,} "
                         f"{self.unit}s)")
        parts.append(f"{self.engine.stats['windows'] / max(elapsed, 1e-9):,.0f} windows/s")
        if self.expected and done:
            parts.append(f"ETA {_duration(elapsed * (self.expected - done) / done)}")
        return ", ".join(parts)

    def _write(self, text: str) -> None:
        if self.live:
            self.stream.write(f"\r{text}\x1b[K")
        else:
            self.stream.write(text + "\n")
        self.stream.flush()
        self.shown = True

    def finish(self) -> None:
        """Clear the live line so the report starts on a clean line."""
        if self.live and self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
