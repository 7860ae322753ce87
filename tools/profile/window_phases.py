"""CPU seconds per phase of the window loop, per rank: where a window's CPU goes.

    mpiexec -n 128 python tools/profile/window_phases.py run --policy vanilla \
        --set scenario.duration_ns=12000000 --json F --quiet

Runs `python -m emu ARGS` in this process (the working directory's code) with the
window loop's steps wrapped in `time.process_time()` counters, and prints on stderr,
for each rank listed in PHASE_RANKS (default "0 1 5"), each step's CPU seconds and
calls. A sampling profiler cannot tell these apart on a rank that is asleep most of
the time; this can. The counters cost about a microsecond a call, so wall times under
this wrapper are a little longer than a bare run's. Steps nest: `synchronise` holds
`barrier` (which holds `sleep`, `wake` and, on the leader, `lead`), `msg_wait`,
`blobs` and `apply`.
"""

import atexit
import os
import runpy
import sys
import time

sys.path.insert(0, os.getcwd())     # the working directory's emu, as `python -m emu`

from emu.cpu.cpu import Cpu  # noqa: E402
from emu.engine.engine import Engine  # noqa: E402
from emu.engine.sync import WindowSync  # noqa: E402
from emu.mm.replica import Replica  # noqa: E402

STEPS = [(Engine, "_run", "run"), (Engine, "_synchronise", "synchronise"),
         (WindowSync, "barrier", "barrier"), (WindowSync, "_sleep_until_woken", "sleep"),
         (WindowSync, "_lead", "lead"), (WindowSync, "_sleep_until_arrived", "arrivals"),
         (WindowSync, "_wake", "wake"), (WindowSync, "wait", "msg_wait"),
         (WindowSync, "read_blobs", "blobs"), (Replica, "apply", "apply"),
         (Cpu, "run_window", "cpu_window")]
seconds: dict[str, float] = {}
calls: dict[str, int] = {}


def timed(fn, name):
    def wrapper(*args, **kwargs):
        t = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            seconds[name] = seconds.get(name, 0.0) + time.process_time() - t
            calls[name] = calls.get(name, 0) + 1
    return wrapper


def report() -> None:
    rank = os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0"))
    if rank in os.environ.get("PHASE_RANKS", "0 1 5").split():
        steps = " ".join(f"{n} {seconds[n]:.3f}/{calls[n]}" for _, _, n in STEPS if n in calls)
        sys.stderr.write(f"rank {rank}: cpu {time.process_time():.3f} s | {steps}\n")


for cls, attr, name in STEPS:
    setattr(cls, attr, timed(getattr(cls, attr), name))
atexit.register(report)
sys.argv = ["emu"] + sys.argv[1:]
runpy.run_module("emu", run_name="__main__", alter_sys=True)
