"""Per-rank start-up CPU and memory of `python -m emu`: one line per rank on stderr.

    mpiexec -n 4 python tools/profile/rank_stats.py compare --scenario ... --quiet

Runs `python -m emu ARGS` in this process (from the working directory's code) and
prints, for each rank: CPU seconds and wall seconds from the process's start to its
first window (a dormant rank runs none: -1), its RSS then (VmRSS, and the anonymous,
file-backed and shared parts), its whole CPU time, and at exit (after MPI_Finalize,
which connects more peers than the run does) VmHWM and the same parts. On a machine
with more ranks than cores a rank's CPU time is what it costs the others' start-up.
The results file's `peak_rss_mb_per_rank` is each rank's ru_maxrss before the results
are gathered: the figure the benchmark reports.
"""

import atexit
import os
import runpy
import sys
import time

sys.path.insert(0, os.getcwd())     # the working directory's emu, as `python -m emu`

import emu  # noqa: E402  (emu.STARTED_S: the process's start)
import emu.runner  # noqa: E402

FIELDS = ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem")
first: dict = {}


def status() -> dict:
    """The memory fields of /proc/self/status, in MB."""
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in FIELDS:
                out[key] = int(value.split()[0]) / 1024
    return out


def _noting_first_window(stamps: list):
    """emu.runner._first_window, also noting this rank's CPU, wall and memory."""
    hook = _first_window(stamps)

    def noted(start):
        if not first:
            first.update(cpu=time.process_time(), wall=time.perf_counter() - emu.STARTED_S,
                         mem=status())
        hook(start)
    return noted


def report() -> None:
    rank = os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "?"))
    end, at = status(), first.get("mem", {})
    sys.stderr.write(
        f"rank {rank}: first window cpu {first.get('cpu', -1):.3f} s wall "
        f"{first.get('wall', -1):.3f} s RSS {at.get('VmRSS', -1):.1f} MB (anon "
        f"{at.get('RssAnon', -1):.1f} file {at.get('RssFile', -1):.1f} shm "
        f"{at.get('RssShmem', -1):.1f}) | cpu total {time.process_time():.3f} s | exit HWM "
        f"{end['VmHWM']:.1f} MB (anon {end['RssAnon']:.1f} file {end['RssFile']:.1f} shm "
        f"{end['RssShmem']:.1f})\n")


_first_window = emu.runner._first_window
emu.runner._first_window = _noting_first_window
atexit.register(report)
sys.argv = ["emu", *sys.argv[1:]]
runpy.run_module("emu", run_name="__main__", alter_sys=True)
