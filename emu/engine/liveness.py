"""Notice a rank of this node that died, so the job ends instead of waiting for it.

A rank killed by SIGKILL (the OOM killer, a user, a node's watchdog) never arrives at
the window barrier. Whether the launcher then ends the job depends on it and on its
settings (Slurm's KillOnBadExit or `srun --kill-on-bad-exit`, Open MPI's
`--enable-recovery`), and MPI itself tells the survivors nothing: they would wait for
ever. So the ranks of one node know each other's pids: the leader
watches the others while it waits for them, and the others watch the leader while they
sleep. The first rank to notice reports the death (one line) and ends the job with
MPI_Abort. A rank is identified by its pid and start time, so a zombie or a reused pid
counts as dead.
"""

import os
import time
from typing import NoReturn

CHECK_PERIOD_S = 0.5   # how often a waiting rank looks at the ranks it waits for
HANDOVER_S = 2.0       # a rank that did not report aborts quietly if still alive then
HAVE_PROC = os.path.exists("/proc/self/stat")


class RankLost(RuntimeError):
    """A rank of this node died; the message is None except on the rank reporting it."""


def process_start(pid: int) -> bytes | None:
    """The process's start time (Linux), b"" where only existence can be told, None if
    it is gone or a zombie."""
    if not HAVE_PROC:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return b""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except FileNotFoundError:
        return None
    return None if fields[0] in (b"Z", b"X") else fields[19]


class Liveness:
    """The ranks of this node this rank waits for, checked at most every CHECK_PERIOD_S."""

    def __init__(self, ranks: list[int], pids: list[int], me: int, marker: str):
        self.ranks, self.pids, self.me = ranks, pids, me
        self.marker = marker          # created by the rank that reports; node-local path
        self.starts = [process_start(p) for p in pids]
        self.watched = [i for i in range(len(pids)) if i != me] if me == 0 else [0]
        self._next = time.monotonic() + CHECK_PERIOD_S

    def check(self, now: bool = False) -> None:
        """Raise RankLost if a watched rank died."""
        t = time.monotonic()
        if t < self._next and not now:
            return
        self._next = t + CHECK_PERIOD_S
        for i in self.watched:
            if process_start(self.pids[i]) != self.starts[i]:
                self._lost(i)

    def reader_gone(self, i: int) -> NoReturn:
        """Rank i's pipe has no reader any more (EPIPE, ENXIO): it died, even if /proc
        does not show it yet (a SIGKILLed process closes its files before it becomes a
        zombie). Report it as soon as /proc agrees, at the latest after HANDOVER_S."""
        end = time.monotonic() + HANDOVER_S
        while process_start(self.pids[i]) == self.starts[i] and time.monotonic() < end:
            time.sleep(0.01)
        self._lost(i)

    def _lost(self, i: int) -> NoReturn:
        """The first rank of the node to notice a death reports it; the others (they
        also notice the reporter's own exit once MPI_Abort starts ending the job) give
        it HANDOVER_S to end them before they abort quietly themselves."""
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            time.sleep(HANDOVER_S)
            raise RankLost(None) from None
        raise RankLost(f"rank {self.ranks[i]} (pid {self.pids[i]} on "
                       f"{os.uname().nodename}) died; ending the job")
