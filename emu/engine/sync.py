"""Window synchronisation: a barrier that proves delivery and publishes shared state.

Ranks on one node meet in an MPI-3 shared-memory window: each writes its row and its
epoch, then sleeps in a blocking read of its own named pipe. Only the node leader polls
(with a sleep back-off) until every active rank has arrived, then wakes them with one
byte each. A waiting rank thus costs no CPU at all, which matters when 128 ranks share
2 cores: 127 polling ranks would steal the CPU from the one rank everybody waits for.
Across nodes only one leader per node talks, with non-blocking collectives polled with
back-off. Nothing spins in a blocking MPI call, and every wait also checks that the
ranks it waits for are alive (liveness.py).

Per epoch every rank publishes: how many messages it sent to each rank (so receivers
know when all have arrived), the earliest time it has work and the earliest time an
unpaced component (a CPU) can act (the window start and the paced coordinator's
horizon), each local component's published state slots, and, from the root rank only,
a broadcast blob (the coordinator's page-table change log). Buffers alternate by epoch
parity: a rank can be at most one epoch ahead of the slowest, so two suffice.
"""

import errno
import os
import select
import time

import numpy as np

from emu.engine.liveness import CHECK_PERIOD_S, Liveness

NAP_S = 2e-4          # longest sleep between polls
PIPE_NAP_S = 1e-3     # a rank asleep on its pipe still drives MPI progress this often...
PIPE_NAP_MAX_S = 8e-3  # ...backing off to this
WAKE_FANOUT = 4       # wake-ups go down a tree: no rank writes more than this many bytes
FIRST_NAP_S = 2e-5    # first sleep; doubles up to the longest
SETUP_NAP_S = 1e-2    # longest sleep in the set-up and closing barriers: ranks that arrive
                      # early would take the CPU of those still starting (128 on 2 cores)
BLOB_BYTES = 8 << 20  # broadcast blob capacity per epoch


def node_communicator(MPI, comm):
    """Ranks sharing memory. EMU_RANKS_PER_NODE splits one machine into fake nodes (tests)."""
    per_node = int(os.environ.get("EMU_RANKS_PER_NODE", "0"))
    if per_node > 0:
        return comm.Split(comm.Get_rank() // per_node, comm.Get_rank())
    return comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())


def backoff_wait(done, on_idle=None, cap: float = NAP_S) -> None:
    """Poll `done()` with a sleep back-off; run `on_idle()` between polls."""
    nap = FIRST_NAP_S
    while not done():
        if on_idle is not None:
            on_idle()
        time.sleep(nap)
        nap = min(cap, nap * 2)


class WindowSync:
    """The per-epoch barrier over shared memory (and leaders over MPI when multi-node)."""

    def __init__(self, MPI, comm, n_components: int, slots_per_component: int):
        self.MPI = MPI
        self.comm = comm
        self.world = comm.Get_size()
        self.rank = comm.Get_rank()
        self.node = node_communicator(MPI, comm)
        self.nrank = self.node.Get_rank()
        self.nsize = self.node.Get_size()
        is_leader = self.nrank == 0
        self.multi_node = self.nsize != self.world
        # one node needs no leaders' communicator (a collective of every rank at start)
        self.leaders = comm.Split(0 if is_leader else MPI.UNDEFINED, self.rank) \
            if self.multi_node else MPI.COMM_NULL
        self.ncomp, self.k = n_components, slots_per_component

        W, N, C, K = self.world, self.nsize, n_components, slots_per_component
        self._layout = {
            "arrive": N, "finished": 1, "next": 2 * N * 2, "counts": 2 * N * W,
            "pub": 2 * C * K, "res_counts": 2 * W, "res_next": 2 * 2, "bloblen": 2,
        }
        total = sum(self._layout.values())
        itemsize = 8
        self.win = MPI.Win.Allocate_shared(total * itemsize if is_leader else 0, itemsize,
                                           comm=self.node)
        buf, _ = self.win.Shared_query(0)
        arr = np.ndarray(buffer=buf, dtype=np.int64, shape=(total,))
        views, off = {}, 0
        for name, size in self._layout.items():
            views[name] = arr[off:off + size]
            off += size
        self.arrive = views["arrive"]
        self.finished = views["finished"]
        self.active = np.ones(N, dtype=bool)   # dormant ranks do not take part
        self._wake_tree()
        self.next = views["next"].reshape(2, N, 2)
        self.counts = views["counts"].reshape(2, N, W)
        self.pub = views["pub"].reshape(2, C, K)
        self.res_counts = views["res_counts"].reshape(2, W)
        self.res_next = views["res_next"].reshape(2, 2)
        self.bloblen = views["bloblen"]
        self.bwin = MPI.Win.Allocate_shared(2 * BLOB_BYTES if is_leader else 0, 1,
                                            comm=self.node)
        bbuf, _ = self.bwin.Shared_query(0)
        self.blob = np.ndarray(buffer=bbuf, dtype=np.uint8, shape=(2, BLOB_BYTES))
        if is_leader:
            arr[:] = 0
        ids = np.zeros((N, 2), dtype=np.int64)
        self.node.Allgather(np.array([self.rank, os.getpid()], dtype=np.int64), ids)
        self.node_ranks = ids[:, 0].tolist()
        self.pipe_dir = self._node_directory()
        self.live = Liveness(self.node_ranks, ids[:, 1].tolist(), self.nrank,
                             os.path.join(self.pipe_dir, "lost"))
        self._open_pipes()
        self.node_cids: list[int] = []  # components placed on this node (set by the engine)
        self.win.Lock_all()
        self.bwin.Lock_all()
        self.win.Sync()
        self._node_barrier()

    def _node_directory(self) -> str:
        """A directory the leader makes for this node's pipes (and liveness marker)."""
        path = np.zeros(256, dtype=np.uint8)
        if self.nrank == 0:
            import tempfile  # the leader's only: at 128 ranks on 2 cores imports add up

            d = tempfile.mkdtemp(prefix="emu-sync-").encode()
            path[:len(d)] = np.frombuffer(d, dtype=np.uint8)
        self.node.Bcast(path, root=0)
        return bytes(path).rstrip(b"\0").decode()

    def _open_pipes(self) -> None:
        """One named pipe per local rank: a blocked read is how a rank waits."""
        mine = os.path.join(self.pipe_dir, str(self.nrank))
        os.mkfifo(mine)
        self.rfd = os.open(mine, os.O_RDWR)
        self._node_barrier()
        self.wfds = [self._open_writer(i) for i in range(self.nsize)]

    def _open_writer(self, i: int) -> int:
        try:
            return os.open(os.path.join(self.pipe_dir, str(i)), os.O_WRONLY | os.O_NONBLOCK)
        except OSError as e:
            if e.errno != errno.ENXIO:   # ENXIO: no reader, so rank i is gone: name it
                raise
            self.live.check(now=True)
            raise

    def _node_barrier(self) -> None:
        """A barrier of this node's ranks that notices a dead one."""
        req = self.node.Ibarrier()
        backoff_wait(req.Test, self.live.check, SETUP_NAP_S)

    def _sleep_until_woken(self, on_idle) -> None:
        """Block on the pipe; every few ms run `on_idle` so MPI makes progress on sends
        that were queued because a receiver's shared-memory cells were full."""
        timeout = PIPE_NAP_S
        while not select.select([self.rfd], [], [], timeout)[0]:
            on_idle()
            self.live.check()
            timeout = min(PIPE_NAP_MAX_S, timeout * 2)
        os.read(self.rfd, 1)

    def _wake(self, ranks) -> None:
        for i in ranks:
            try:
                os.write(self.wfds[i], b"w")
            except BrokenPipeError:   # its reader is gone: name it
                self.live.check(now=True)
                raise

    def wait(self, done, on_idle) -> None:
        """backoff_wait that also notices a dead rank this one waits for."""
        def idle():
            on_idle()
            self.live.check()
        backoff_wait(done, idle)

    # ------------------------------------------------------------------------------------
    def write_row(self, epoch: int, sent_counts: np.ndarray, next_times: tuple[int, int]) -> None:
        """This rank's sends per destination rank and its (earliest time, horizon)."""
        p = epoch & 1
        self.counts[p, self.nrank, :] = sent_counts
        self.next[p, self.nrank] = next_times

    def write_published(self, epoch: int, cid: int, values) -> None:
        self.pub[epoch & 1, cid, :] = values

    def write_blob(self, epoch: int, data: bytes) -> None:
        """Root rank only: the blob every rank reads after this epoch's barrier."""
        if len(data) > BLOB_BYTES:
            raise RuntimeError(f"broadcast blob of {len(data)} bytes exceeds {BLOB_BYTES}")
        p = epoch & 1
        self.blob[p, :len(data)] = np.frombuffer(data, dtype=np.uint8)
        self.bloblen[p] = len(data)

    def barrier(self, epoch: int, on_idle) -> tuple[int, np.ndarray]:
        """Arrive at epoch `epoch`; return (messages to expect, global minima of the
        (earliest time, horizon) pairs)."""
        p = epoch & 1
        self.win.Sync()
        self.bwin.Sync()
        self.arrive[self.nrank] = epoch + 1     # shared memory starts zeroed
        self.win.Sync()
        if self.nrank == 0:
            def all_arrived():
                self.win.Sync()
                return int(self.arrive[self.active].min()) > epoch

            self.wait(all_arrived, on_idle)
            if self.multi_node:
                self._leader_exchange(epoch, on_idle)
                self.win.Sync()
            self.bwin.Sync()
            self._wake(self.wake_children)
        else:
            self._sleep_until_woken(on_idle)
            self._wake(self.wake_children)
            self.win.Sync()
            self.bwin.Sync()
        if self.multi_node:
            return int(self.res_counts[p, self.rank]), self.res_next[p].copy()
        return int(self.counts[p, :, self.rank].sum()), self.next[p][self.active].min(axis=0)

    def _leader_exchange(self, epoch: int, on_idle) -> None:
        """Node leaders combine counts, published state and the root's blob over MPI."""
        MPI, p = self.MPI, epoch & 1
        mine = np.zeros_like(self.pub[p])
        mine[self.node_cids] = self.pub[p][self.node_cids]
        blob_n = self.bloblen[p:p + 1] if self.rank == 0 else np.zeros(1, np.int64)
        summed = np.concatenate([self.counts[p].sum(axis=0), mine.ravel(), blob_n])
        total = np.empty_like(summed)
        nxt = self.next[p][self.active].min(axis=0)
        gmin = np.empty_like(nxt)
        reqs = [self.leaders.Iallreduce(summed, total, op=MPI.SUM),
                self.leaders.Iallreduce(nxt, gmin, op=MPI.MIN)]
        self.wait(lambda: MPI.Request.Testall(reqs), on_idle)
        W = self.world
        self.res_counts[p, :] = total[:W]
        self.pub[p].ravel()[:] = total[W:W + self.pub[p].size]
        n = int(total[-1])
        self.bloblen[p] = n
        self.res_next[p] = gmin
        if n:
            data = np.array(self.blob[p, :n]) if self.rank == 0 else np.empty(n, np.uint8)
            req = self.leaders.Ibcast(data, root=0)
            self.wait(req.Test, on_idle)
            self.blob[p, :n] = data

    def set_dormant(self, dormant_node_ranks) -> None:
        """Ranks that will never have work (no thread, never an IPI target) skip windows."""
        self.active[:] = True
        self.active[list(dormant_node_ranks)] = False
        self._wake_tree()

    def _wake_tree(self) -> None:
        """The leader wakes the first WAKE_FANOUT active ranks, each of those the next
        ones, and so on: writing to a pipe costs the writer a wake-up of the reader, and
        the leader (rank 0, the coordinator) is the rank everyone waits for."""
        order = [i for i in range(1, self.nsize) if self.active[i]]
        pos = order.index(self.nrank) + 1 if self.nrank in order else 0
        first = pos * WAKE_FANOUT
        self.wake_children = order[first:first + WAKE_FANOUT]

    def mark_finished(self) -> None:
        """The leader: the active ranks are done; wake the dormant ones."""
        self.win.Sync()
        self.finished[0] = 1
        self.win.Sync()
        for i in range(1, self.nsize):
            if not self.active[i]:
                try:
                    os.write(self.wfds[i], b"w")
                except BrokenPipeError:
                    pass                # it saw the flag first and has left already

    def wait_finished(self) -> None:
        """A dormant rank sleeps on its pipe until the leader wakes it at the end,
        looking at the rank it watches every CHECK_PERIOD_S (polling every 20 ms cost
        each dormant rank ~4 ms of CPU per second, a third of a core at 128 ranks)."""
        while True:
            self.win.Sync()
            if self.finished[0]:
                return
            if select.select([self.rfd], [], [], CHECK_PERIOD_S)[0]:
                os.read(self.rfd, 1)
            self.live.check()

    def published(self, epoch: int) -> np.ndarray:
        """State published in `epoch` (read during epoch+1)."""
        return self.pub[epoch & 1]

    def read_blob(self, epoch: int) -> bytes:
        p = epoch & 1
        return bytes(self.blob[p, :int(self.bloblen[p])])

    def close(self) -> None:
        for fd in self.wfds + [self.rfd]:
            os.close(fd)
        self._node_barrier()
        if self.nrank == 0:
            import shutil

            shutil.rmtree(self.pipe_dir, ignore_errors=True)
        self.win.Unlock_all()
        self.bwin.Unlock_all()
        self.win.Free()
        self.bwin.Free()
        if self.leaders != self.MPI.COMM_NULL:
            self.leaders.Free()
        self.node.Free()

