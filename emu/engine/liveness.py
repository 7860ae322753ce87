"""Notice a rank of this node that died, so the job ends instead of waiting for it.

A rank killed by SIGKILL (the OOM killer, a user, a node's watchdog) never arrives at
the window barrier. Whether the launcher then ends the job depends on it (`srun` keeps
the other tasks running unless told `--kill-on-bad-exit`; hydra's `-disable-auto-cleanup`
and Open MPI's `--enable-recovery` do too), and MPI itself tells the survivors nothing:
they would wait for ever. So the ranks of one node know each other's pids: the leader
watches the others while it waits for them, and the others watch the leader while they
sleep. The lowest-numbered live rank of the node reports the death (one line) and ends
the job with MPI_Abort. A rank is identified by its pid and start time, so a zombie or
a reused pid counts as dead.
"""

import os
import socket
import time

CHECK_PERIOD_S = 0.5   # how often a waiting rank looks at the ranks it waits for
HANDOVER_S = 2.0       # a non-reporting rank takes over if the reporter dies meanwhile
HAVE_PROC = os.path.exists("/proc/self/stat")


class RankLost(RuntimeError):
    """A rank of this node died; raised only on the rank that reports it."""


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

    def __init__(self, ranks: list[int], pids: list[int], me: int):
        self.ranks, self.pids, self.me = ranks, pids, me
        self.starts = [process_start(p) for p in pids]
        self.watched = [i for i in range(len(pids)) if i != me] if me == 0 else [0]
        self._next = time.monotonic() + CHECK_PERIOD_S

    def _alive(self, i: int) -> bool:
        return process_start(self.pids[i]) == self.starts[i]

    def check(self, now: bool = False) -> None:
        """Raise RankLost (on the reporting rank) if a watched rank died."""
        t = time.monotonic()
        if t < self._next and not now:
            return
        self._next = t + CHECK_PERIOD_S
        for i in self.watched:
            if not self._alive(i):
                self._lost(i)

    def _lost(self, i: int) -> None:
        """Report if this is the node's lowest live rank; otherwise wait to be ended by
        the reporter's MPI_Abort, taking over if the reporter dies too."""
        while True:
            reporter = next(j for j in range(len(self.pids)) if j == self.me or self._alive(j))
            if reporter == self.me:
                raise RankLost(f"rank {self.ranks[i]} (pid {self.pids[i]} on "
                               f"{socket.gethostname()}) died; ending the job")
            time.sleep(HANDOVER_S)
