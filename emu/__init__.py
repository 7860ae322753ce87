"""emu: a multiprocess parallel emulator of Linux TLB shootdowns (vanilla x86 and LUF)."""

import os
import time

__version__ = "0.1.0"


def _process_age_s() -> float:
    """Seconds since this process was forked (Linux /proc/self/stat field 22, in clock
    ticks since boot), so start-up counts the interpreter's own; 0 where unavailable."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


# the process's start on the time.perf_counter() clock: start-up is measured from here
# to the first window (this package is the first thing `python -m emu` imports)
STARTED_S = time.perf_counter() - _process_age_s()
