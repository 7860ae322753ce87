"""Window synchronisation: a barrier that proves delivery and publishes shared state.

Ranks on one node meet in an MPI-3 shared-memory window: each writes its row and its
epoch, then sleeps in a blocking read of its own named pipe. The last to arrive wakes
the node leader (asleep on its own pipe), which then wakes the ranks that have work in
the next window with one byte each. A waiting rank thus costs no CPU at all, which
matters when 128 ranks share 2 cores: polling ranks would steal the CPU from the one
rank everybody waits for. Across nodes only one leader per node talks,
with non-blocking collectives polled with back-off. Nothing spins in a blocking MPI
call, and every wait also checks that the ranks it waits for are alive (liveness.py).

Per epoch every rank publishes: how many messages it sent to each rank (the leader
sums them into one count per receiver, so a woken rank knows when all have arrived),
the earliest time it has work and the earliest time an unpaced component (a CPU) can
act (the window start and the paced coordinator's horizon), the same two for its own
components alone, the earliest time it must run a window (its wake time), the earliest
pending work of its paced components (how far the CPUs may run), each local
component's published state slots, and, from the root rank only, a broadcast blob (the
coordinator's page-table change log). Buffers
alternate by epoch parity: a rank can be at most one epoch ahead of the slowest, so two
suffice.

A rank sleeps through windows in which it has nothing to do (it is *parked*): no
message arrived for it and its wake time is at or past the window's end. Its run of
such a window would change nothing, so results do not depend on parking. The leader
carries a parked rank's row and published state over to the next two epochs (after
that both parities hold them, and carrying is idempotent), and puts the blobs into a
ring that a rank reads up to the current epoch when it wakes. The leader
wakes a parked rank before the ring could overwrite a blob it has not read, and once
the ring's used part passes REWIND_BYTES it has every rank run a window, after which
the ring starts over (so each rank touches only a small part of it). Most
windows of a busy run involve a few CPUs, so this is what makes a window's cost follow
the ranks with work rather than all ranks (docs/performance.md).

The leader also decides when the ranks save a checkpoint (emu/checkpoint.py): at the
first epoch whose window start reaches the next multiple of the checkpoint interval, or
at once when a rank of the node got SIGTERM or SIGUSR1 (then the job stops after
saving). It wakes every rank for that epoch; the decision travels with the global
minima (ACTION).
"""

import errno
import os
import select
import signal
import time

import numpy as np

from emu.engine.component import INF
from emu.engine.liveness import CHECK_PERIOD_S, Liveness

NAP_S = 2e-4          # longest sleep between polls
PIPE_NAP_S = 1e-3     # a rank asleep on its pipe still drives MPI progress this often...
PIPE_NAP_MAX_S = 8e-3  # ...backing off to this
ARRIVAL_NAP_S = 2e-3  # the leader looks at the arrivals this often even if nobody wakes it
WAKE_FANOUT = 4       # wake-ups go down a tree: no rank writes more than this many bytes
FIRST_NAP_S = 2e-5    # first sleep; doubles up to the longest
SETUP_NAP_S = 1e-2    # longest sleep in the set-up and closing barriers: ranks that arrive
                      # early would take the CPU of those still starting (128 on 2 cores)
BLOB_BYTES = 8 << 20  # broadcast blob capacity per epoch
RING_BYTES = 16 << 20  # the ring of blobs that parked ranks read when they wake
RING_EPOCHS = 1 << 12  # epochs whose blob positions the ring remembers
REWIND_BYTES = 1 << 20  # past this, every rank runs a window so that the ring can start
                      # over: each rank touches only this much of it (RSS counts it)
NEXT, HORIZON, OWN_NEXT, OWN_HORIZON, WAKE, PACED = range(6)   # columns of a rank's time row
CARRIED = [OWN_NEXT, OWN_HORIZON, OWN_NEXT, OWN_HORIZON, WAKE]  # a parked rank's row: its
                      # own times stand; what it sent was delivered when it last ran, and
                      # it has no paced component (the coordinator is on rank 0, the
                      # leader of its node, which always runs): PACED is INF
START, HORIZON_MIN, ACTION, PACED_MIN = range(4)   # what every rank learns at a barrier
MINIMA = ([NEXT, HORIZON, PACED], [START, HORIZON_MIN, PACED_MIN])   # rows' columns -> those
GO, CHECKPOINT, CHECKPOINT_AND_STOP = range(3)   # ACTION after the barrier
STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)   # a batch system's time limit; SIGUSR1
                      # is what launchers pass on to the ranks (Open MPI's mpirun ends the
                      # job on SIGTERM instead), so the batch scripts send it
_stop_asked = [False]   # seen before a WindowSync existed to record it


def stop_on_signal(sync: "WindowSync | None" = None) -> None:
    """Make STOP_SIGNALS a request to checkpoint and stop: the flag goes into the node's
    shared memory, where the leader looks every epoch."""
    def handler(_signum, _frame):
        _stop_asked[0] = True
        if handler.sync is not None:
            handler.sync.term[0] = 1
    handler.sync = sync
    for sig in STOP_SIGNALS:
        signal.signal(sig, handler)


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


def ranks_to_run(active: np.ndarray, incoming: np.ndarray, wake: np.ndarray,
                 window_end: int, ending: bool, behind: np.ndarray) -> np.ndarray:
    """Which ranks of a node run the next window: the leader (index 0) always; at the
    end every active rank (to leave the loop); otherwise an active rank with a message
    to receive, with something to do before `window_end` (where its CPUs stop in this
    window: a CPU whose thread is ready but has reached the kernel's earliest pending
    work cannot run on, and waking it for nothing was half of all wake-ups), or
    `behind` the ring of blobs (about to be overwritten, or the ring is to start over).
    The others sleep: their run of the window would change nothing."""
    if ending:
        run = active.copy()
    else:
        run = active & ((incoming > 0) | (wake < window_end) | behind)
    run[0] = True
    return run


class WindowSync:
    """The per-epoch barrier over shared memory (and leaders over MPI when multi-node).
    One serves every run of a job (begin_run): building one costs collectives of every
    rank, seconds at 128 ranks on 2 cores, and so does freeing it."""

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
        self.runs = 0                   # runs begun on this WindowSync (begin_run)

        W, N, C, K, R = self.world, self.nsize, n_components, slots_per_component, RING_EPOCHS
        self._layout = {
            "arrive": N, "finished": 1, "next": 2 * N * 6, "counts": 2 * N * W,
            "pub": 2 * C * K, "res_counts": 2 * W, "res_next": 2 * 4,
            "ring_start": R, "ring_end": R, "woke": 1, "wake_n": 1, "wake_list": N,
            "term": 1,
        }
        total = sum(self._layout.values())
        # one window for the int64 state and, after it, the ring of blobs: each window
        # costs a collective of the node at start-up and at the end
        self.win = MPI.Win.Allocate_shared(total * 8 + RING_BYTES if is_leader else 0, 1,
                                           comm=self.node)
        buf, _ = self.win.Shared_query(0)
        arr = np.ndarray(buffer=buf, dtype=np.int64, shape=(total,))
        self.ring = np.ndarray(buffer=buf, dtype=np.uint8, shape=(RING_BYTES,),
                               offset=total * 8)
        views, off = {}, 0
        for name, size in self._layout.items():
            views[name] = arr[off:off + size]
            off += size
        self.arrive = views["arrive"]
        self.finished = views["finished"]
        self.next = views["next"].reshape(2, N, 6)
        self.counts = views["counts"].reshape(2, N, W)
        self.pub = views["pub"].reshape(2, C, K)
        self.res_counts = views["res_counts"].reshape(2, W)
        self.res_next = views["res_next"].reshape(2, 4)
        self.term = views["term"]            # a rank of this node got a stop signal
        self.ring_start, self.ring_end = views["ring_start"], views["ring_end"]
        self.woke = views["woke"]            # the epoch whose barrier last woke ranks
        self.wake_n, self.wake_list = views["wake_n"], views["wake_list"]
        self._shared = arr
        self._clear_shared()
        ids = np.zeros((N, 2), dtype=np.int64)
        self.node.Allgather(np.array([self.rank, os.getpid()], dtype=np.int64), ids)
        self.node_ranks = ids[:, 0].tolist()
        self.pipe_dir = self._node_directory()
        self.live = Liveness(self.node_ranks, ids[:, 1].tolist(), self.nrank,
                             os.path.join(self.pipe_dir, "lost"))
        self._open_pipes()
        # NOCHECK: nobody ever takes an exclusive lock, so no lock is needed at the
        # targets; without it MPICH's Lock_all put ~26 MB of shared-memory cells into
        # every rank's RSS at 128 ranks (performance.md)
        self.win.Lock_all(MPI.MODE_NOCHECK)
        self.win.Sync()
        self._node_barrier()

    def _clear_shared(self) -> None:
        """The leader zeroes the node's shared state (`arrive` counts from zero)."""
        if self.nrank == 0:
            self._shared[:] = 0
            self.woke[0] = -1
            self.term[0] = int(_stop_asked[0])

    def begin_run(self) -> None:
        """Start a run: a fresh run's state, on this node's shared memory and pipes too
        when an earlier run used them. The first barrier waits for every rank of the
        node to leave that run, after which only the leader's end-of-run wake-ups of
        dormant ranks can be left in a pipe (a dormant rank that saw the flag first
        left without reading its byte): each rank empties its own."""
        if self.runs:
            self._node_barrier()
            while select.select([self.rfd], [], [], 0)[0]:
                os.read(self.rfd, 4096)
            self._clear_shared()
            self.win.Sync()
            self._node_barrier()
            self.win.Sync()
        self.runs += 1
        N = self.nsize
        self.quantum = self.stop = 0    # the window length and the run's end (Engine.run)
        self.republish = None   # (rows) -> None: published state after an idle window
        self.checkpointing = False  # whether ranks save checkpoints (a signal stops)
        self.checkpoint_every = 0   # simulated ns between them (0: only on a signal)
        self.checkpoint_next = 0    # the window start at which the next one is due
        self.ring_head = 0                   # leaders: where the next blob goes (absolute)
        self._outgoing = b""                 # root: this epoch's blob, put in at the barrier
        self.read_epoch = -1                 # the last epoch whose blob this rank read
        # the leader's view of its node: who takes part, who sleeps through windows
        self.active = np.ones(N, dtype=bool)   # dormant ranks never take part
        self.parked = np.zeros(N, dtype=bool)
        self.last_woken = np.zeros(N, dtype=np.int64)   # epoch whose barrier woke it last
        self.read_pos = np.zeros(N, dtype=np.int64)     # ring position it has read up to
        self.node_cids: list[int] = []   # components placed on this node (see place)
        self.rank_cids: list[list[int]] = [[] for _ in range(N)]

    def place(self, placement: list[int]) -> None:
        """Which components live on which rank of this node (component id -> world rank)."""
        where = {r: i for i, r in enumerate(self.node_ranks)}
        self.node_cids = [c for c, r in enumerate(placement) if r in where]
        for c in self.node_cids:
            self.rank_cids[where[placement[c]]].append(c)

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
            self.live.reader_gone(i)

    def _node_barrier(self) -> None:
        """A barrier of this node's ranks that notices a dead one."""
        req = self.node.Ibarrier()
        backoff_wait(req.Test, self.live.check, SETUP_NAP_S)

    def _sleep_until_woken(self, push) -> None:
        """Block on the pipe. Every few ms `push` our own sends (MPI progress for sends
        queued because a receiver's shared-memory cells were full); once they are all
        done, only look at the ranks this one watches now and then. They usually are
        done before it sleeps: then the first look too waits CHECK_PERIOD_S (a first
        1 ms timeout woke 93-98% of the sleeps once for nothing, and on 2 cores each such
        wake-up takes a core from a rank with work). Messages to this rank wait in MPI
        until it runs its window: receiving them earlier changes nothing, and a probe
        that finds nothing costs MPICH's yield."""
        timeout = CHECK_PERIOD_S if push() else PIPE_NAP_S
        while not select.select([self.rfd], [], [], timeout)[0]:
            timeout = CHECK_PERIOD_S if push() else min(PIPE_NAP_MAX_S, timeout * 2)
            self.live.check()
        os.read(self.rfd, 1)

    def _wake_leader_if_last(self, epoch: int) -> None:
        """The last rank to arrive wakes the leader, which sleeps on its pipe instead of
        polling (its polls took the CPU of the ranks it waited for). Each rank writes its
        arrival, fences (Win_sync) and then reads the others', so of two ranks arriving
        together at least one sees both: a wake-up is never lost, at worst doubled (the
        leader looks at the arrivals again). The ranks that take part in this epoch are
        the leader and those its last barrier woke."""
        taking_part = self.wake_list[:int(self.wake_n[0])]
        if self.arrive[0] > epoch and self.arrive[taking_part].min(initial=epoch + 1) > epoch:
            self._wake([0])

    def _sleep_until_arrived(self, all_arrived, push) -> None:
        """The leader sleeps on its pipe until the last rank to arrive writes to it,
        pushing its own sends and looking at the ranks it waits for in between (and at
        the arrivals every ARRIVAL_NAP_S, which costs latency only if a wake-up were
        lost)."""
        while not all_arrived():
            timeout = ARRIVAL_NAP_S if push() else NAP_S
            if select.select([self.rfd], [], [], timeout)[0]:
                os.read(self.rfd, 4096)     # a doubled wake-up leaves a byte: take it too
            self.live.check()

    def _wake(self, ranks) -> None:
        for i in ranks:
            try:
                os.write(self.wfds[i], b"w")
            except BrokenPipeError:   # its reader is gone: name it
                self.live.reader_gone(i)

    def wait(self, done, on_idle) -> None:
        """backoff_wait that also notices a dead rank this one waits for. `on_idle` runs
        once before the first look at `done`: the message wait's first drain usually
        receives everything, and the nap that followed cost a rank its core on a busy
        machine (1.2 ms of wall time per 20 us nap, measured at 128 ranks on 2 cores)."""
        def idle():
            on_idle()
            self.live.check()
        on_idle()
        backoff_wait(done, idle)

    # ------------------------------------------------------------------------------------
    def write_row(self, epoch: int, sent_counts: np.ndarray, times: tuple) -> None:
        """This rank's sends per destination rank and its times (NEXT ... WAKE)."""
        p = epoch & 1
        self.counts[p, self.nrank, :] = sent_counts
        self.next[p, self.nrank] = times

    def write_blob(self, data: bytes) -> None:
        """Root rank only: the blob every rank reads after this epoch's barrier."""
        if len(data) > BLOB_BYTES:
            raise RuntimeError(f"broadcast blob of {len(data)} bytes exceeds {BLOB_BYTES}")
        self._outgoing = data

    def _ring_put(self, epoch: int, data) -> None:
        """Add `epoch`'s blob after the last one."""
        src = np.frombuffer(data, dtype=np.uint8)
        pos, n = self.ring_head, len(src)
        i = pos % RING_BYTES
        first = min(n, RING_BYTES - i)
        self.ring[i:i + first] = src[:first]
        self.ring[:n - first] = src[first:]
        slot = epoch % RING_EPOCHS
        self.ring_start[slot], self.ring_end[slot] = pos, pos + n
        self.ring_head = pos + n

    def read_blobs(self, upto: int) -> bytes:
        """The blobs of the epochs after the last one read, up to `upto`."""
        data = self._ring_bytes(self.read_epoch + 1, upto)
        self.read_epoch = upto
        return data

    def _ring_bytes(self, first: int, last: int) -> bytes:
        """The blobs of epochs `first` to `last` as one: they lie end to end in the ring."""
        pos = int(self.ring_start[first % RING_EPOCHS])
        i, n = pos % RING_BYTES, int(self.ring_end[last % RING_EPOCHS]) - pos
        head = min(n, RING_BYTES - i)
        return bytes(self.ring[i:i + head]) + bytes(self.ring[:n - head])

    def barrier(self, epoch: int, push) -> tuple[int, int, np.ndarray]:
        """Arrive at epoch `epoch` and sleep until this rank has work. Return the epoch
        whose barrier woke it (later than `epoch` if it was parked), the messages to
        expect in that epoch, and what every rank learns (START, HORIZON_MIN, ACTION,
        PACED_MIN)."""
        self.win.Sync()
        self.arrive[self.nrank] = epoch + 1     # shared memory starts zeroed
        self.win.Sync()
        if self.nrank == 0:
            self._lead(epoch, push)
            woke = epoch
        else:
            self._wake_leader_if_last(epoch)
            self._sleep_until_woken(push)
            self.win.Sync()
            woke = int(self.woke[0])
            order = self.wake_list[:int(self.wake_n[0])].tolist()
            self._wake(self._children(order, order.index(self.nrank) + 1))
            self.win.Sync()
        p = woke & 1
        return woke, int(self.res_counts[p, self.rank]), self.res_next[p].copy()

    def _lead(self, epoch: int, push) -> None:
        """The leader: stand in for the parked ranks, wait for the others, combine with
        the other nodes, choose who runs the next window and wake them. Every window
        it looks at the node's ranks (at most every CHECK_PERIOD_S): when it is the last
        to arrive its waits end at once and would never look."""
        self.live.check()
        p = epoch & 1
        # a rank woken at barrier w writes its rows at w + 1; once carried at w + 2 and
        # w + 3 both parities hold them, and carrying again would write the same values
        stale = np.flatnonzero(self.parked & (epoch - self.last_woken <= 3))
        if len(stale):        # nothing changed on them: carry their own times and state
            self.next[p, stale, :PACED] = self.next[1 - p, stale][:, CARRIED]
            self.next[p, stale, PACED] = INF
            self.counts[p, stale] = 0
            cids = [c for r in stale for c in self.rank_cids[r]]
            rows = self.pub[1 - p, cids]
            self.republish(rows)
            self.pub[p, cids] = rows
        awake = np.flatnonzero(self.active & ~self.parked)

        def all_arrived():
            self.win.Sync()
            return int(self.arrive[awake].min()) > epoch

        self._sleep_until_arrived(all_arrived, push)
        term = int(self.term[0])                # all_arrived has just synced the window
        # the parked ranks' rows are carried (no sends), the dormant ones' never written
        minima = self.next[p].min(axis=0, where=self.active[:, None], initial=INF)[MINIMA[0]]
        sent = self.counts[p][awake].sum(axis=0)     # to each rank of the world
        if self.multi_node:
            term = self._leader_exchange(epoch, push, term, minima, sent)
            incoming = self.res_counts[p, self.node_ranks]
        else:                           # one node: its ranks are the world's, in order
            self.res_next[p, MINIMA[1]] = minima
            self.res_counts[p] = incoming = sent
        if not self.parked.any() and self.ring_head % RING_BYTES:
            # every rank arrived after reading all there was: start the ring over
            self.ring_head += RING_BYTES - self.ring_head % RING_BYTES
            self.read_pos[:] = self.ring_head
        self._ring_put(epoch, self._outgoing)
        self._outgoing = b""
        gmin = int(self.res_next[p, 0])
        action = self._action(gmin, term)
        self.res_next[p, ACTION] = action
        behind = (self.ring_head - self.read_pos > RING_BYTES - BLOB_BYTES) | \
            (epoch - self.last_woken >= RING_EPOCHS - 2) | \
            (self.ring_head % RING_BYTES > REWIND_BYTES)
        # the ranks other than the coordinator's hold only unpaced components (CPUs),
        # which run to 1 ns past the paced ones' earliest pending work (engine.py)
        unpaced_end = min(gmin + self.quantum, int(self.res_next[p, PACED_MIN]) + 1)
        run = ranks_to_run(self.active, incoming, self.next[p, :, WAKE], unpaced_end,
                           gmin >= self.stop or action != GO, behind)
        run_idx = np.flatnonzero(run)
        self.parked = self.active & ~run
        self.last_woken[run_idx] = epoch
        self.read_pos[run_idx] = self.ring_head
        order = run_idx[1:]                     # the leader (index 0) always runs
        self.wake_list[:len(order)] = order
        self.wake_n[0] = len(order)
        self.woke[0] = epoch
        self.win.Sync()
        self._wake(self._children(order.tolist(), 0))

    def _action(self, gmin: int, term: int) -> int:
        """Whether every rank saves a checkpoint at this epoch (and stops after it).
        Every node's leader decides alike: the same global minimum, the same interval,
        the same combined stop flag."""
        if gmin >= self.stop or not self.checkpointing:
            return GO
        if term:
            return CHECKPOINT_AND_STOP
        if not self.checkpoint_every or gmin < self.checkpoint_next:
            return GO
        self.checkpoint_next = (gmin // self.checkpoint_every + 1) * self.checkpoint_every
        return CHECKPOINT

    @staticmethod
    def _children(order: list[int], pos: int) -> list[int]:
        """Wake-ups go down a tree over the ranks woken, in rank order: the leader wakes
        the first WAKE_FANOUT, each of those the next ones, and so on. Writing to a pipe
        costs the writer a wake-up of the reader, and the leader (rank 0, the
        coordinator) is the rank everyone waits for."""
        return order[pos * WAKE_FANOUT:(pos + 1) * WAKE_FANOUT]

    def _leader_exchange(self, epoch: int, on_idle, term: int, minima: np.ndarray,
                         sent: np.ndarray) -> int:
        """Node leaders combine the node's `sent` counts, published state, its `minima`
        (MINIMA), stop flags and the root's blob over MPI; return the combined flag."""
        MPI, p = self.MPI, epoch & 1
        mine = np.zeros_like(self.pub[p])
        mine[self.node_cids] = self.pub[p][self.node_cids]
        blob_n = len(self._outgoing)
        summed = np.concatenate([sent, mine.ravel(), [blob_n]])
        total = np.empty_like(summed)
        nxt = np.append(minima, -term)
        gmin = np.empty_like(nxt)
        reqs = [self.leaders.Iallreduce(summed, total, op=MPI.SUM),
                self.leaders.Iallreduce(nxt, gmin, op=MPI.MIN)]
        self.wait(lambda: MPI.Request.Testall(reqs), on_idle)
        W = self.world
        self.res_counts[p, :] = total[:W]
        self.pub[p].ravel()[:] = total[W:W + self.pub[p].size]
        self.res_next[p, MINIMA[1]] = gmin[:-1]
        n = int(total[-1])
        if n:
            data = np.frombuffer(self._outgoing, np.uint8).copy() if self.rank == 0 \
                else np.empty(n, np.uint8)
            req = self.leaders.Ibcast(data, root=0)
            self.wait(req.Test, on_idle)
            self._outgoing = data
        return int(-gmin[-1])

    def resume_at(self, epoch: int, pub: np.ndarray) -> None:
        """Continue after `epoch`'s barrier, as a checkpoint taken there left it: its
        published state in place, its blob read (the replicas were saved after it).
        Every rank that runs writes the published state itself, the same values, before
        its first window reads them: the ranks start that window without a barrier (the
        leader may still be rebuilding the coordinator), and dormant ranks would never
        come to one."""
        self.read_epoch = epoch
        self.last_woken[:] = epoch
        self.pub[epoch & 1] = pub
        self.win.Sync()

    def set_dormant(self, dormant_node_ranks) -> None:
        """Ranks that will never have work (no thread, never an IPI target) skip windows."""
        self.active[:] = True
        self.active[list(dormant_node_ranks)] = False

    def mark_finished(self, stopped: bool = False) -> None:
        """The leader: the active ranks are done (or `stopped` after a checkpoint); wake
        the dormant ones."""
        self.win.Sync()
        self.finished[0] = 2 if stopped else 1
        self.win.Sync()
        for i in range(1, self.nsize):
            if not self.active[i]:
                try:
                    os.write(self.wfds[i], b"w")
                except BrokenPipeError:
                    pass                # it saw the flag first and has left already

    def wait_finished(self) -> bool:
        """A dormant rank sleeps on its pipe until the leader wakes it at the end,
        looking at the rank it watches every CHECK_PERIOD_S (polling every 20 ms cost
        each dormant rank ~4 ms of CPU per second, a third of a core at 128 ranks).
        True if the run stopped after a checkpoint."""
        while True:
            self.win.Sync()
            if self.finished[0]:
                return self.finished[0] == 2
            if select.select([self.rfd], [], [], CHECK_PERIOD_S)[0]:
                os.read(self.rfd, 1)
            self.live.check()

    def published(self, epoch: int) -> np.ndarray:
        """State published in `epoch` (read during epoch+1)."""
        return self.pub[epoch & 1]

    def close(self) -> None:
        self.term = np.zeros(1, dtype=np.int64)   # a late signal must not write freed memory
        for fd in self.wfds + [self.rfd]:
            os.close(fd)
        self._node_barrier()
        if self.nrank == 0:
            import shutil

            shutil.rmtree(self.pipe_dir, ignore_errors=True)
        self.win.Unlock_all()
        self.win.Free()
        if self.leaders != self.MPI.COMM_NULL:
            self.leaders.Free()
        self.node.Free()
