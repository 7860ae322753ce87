"""The per-rank window loop: run local components, exchange events, synchronise.

An event takes effect at its own timestamp (send time plus the modelled latency of its
hop), not at a window boundary. A window starts at the earliest pending event or
component time over all ranks and lasts `quantum_ns`: it only bounds how far any
component may run ahead of the slowest one (the skew bound). Inside a window each
component handles its own events in (time, source, sequence) order; every event a
component sends is delivered at the end of the window, whether its destination is on
this rank or another, so placement never changes results. Remote events are real MPI
point-to-point messages, sent as they are produced. A rank none of whose components has
anything to do before a window's end, and to which no message was sent, sleeps through
that window (sync.py): its run of it would change nothing.

A *paced* component (the coordinator) runs only up to the horizon: the earliest time at
which any unpaced component (a CPU) could send it something, as known at the window's
start: the least of each one's `answer_bound` (its lookahead: the least its next
request or ack costs it) and of what messages in flight to them could be answered at
(`post`'s `answer_at`). Nothing a CPU sends during the window can then be older than
what the coordinator has done, so the kernel sees every CPU's requests in
simulated-time order. The other way round, the
unpaced components run only to 1 ns past the paced ones' earliest pending work (their
own events, and what was sent to them), as known at the window's start: whatever the
kernel does in a window happens at or after that time, so its IPIs, replies and
page-table changes reach a CPU before the CPU has run past them, at most by the step
it is in; except work set off by a message a CPU sends during the window, which that
start does not know (docs/design.md, "What stays window-dependent").

At a boundary the leaders mark for a checkpoint, `on_checkpoint` runs on every rank that
takes part; a journal records the inputs of components that are saved by replaying
them (journal.py). `run` can start from such a boundary instead of from time zero.
"""

import time

import numpy as np

from emu.engine import wire
from emu.engine.component import INF, Component
from emu.engine.sync import ACTION, CHECKPOINT_AND_STOP, GO, HORIZON_MIN, PACED_MIN, START, WindowSync


class Engine:
    """Runs the components placed on this rank in lock-step windows with all other ranks."""

    def __init__(self, MPI, comm, sync: WindowSync, placement: list[int], quantum_ns: int,
                 measured_kinds: frozenset = frozenset(), paced: frozenset = frozenset()):
        self.MPI = MPI
        self.comm = comm
        self.rank = comm.Get_rank()
        self.placement = placement              # component id -> rank
        self.quantum = int(quantum_ns)
        self.paced = paced                      # component ids that run only to the horizon
        self.horizon = 0
        self.measured_kinds = measured_kinds    # event kinds whose wall latency is sampled
        self.components: list[Component] = []
        self.by_cid: dict[int, Component] = {}
        self.sync = sync                        # the job's; this run begins on it
        sync.begin_run()
        sync.place(placement)
        self.epoch = 0
        self.pub = self.sync.published(1)       # what components read: last epoch's state
        self._local_pending: list[tuple] = []
        self._sent = np.zeros(comm.Get_size(), dtype=np.int64)
        self._sent_min_ts = INF
        self._sent_min_unpaced = INF
        self._sent_min_paced = INF
        self.paced_min = 0                      # earliest pending work of a paced one
        self._requests: list = []
        self._received = 0
        self.blob_source = None                  # root rank: callable -> bytes
        self.blob_sinks: list = []               # every rank: callables(bytes, window start)
        self.on_window = None                    # optional hook(window start) run before each window
        self.dormant = False
        self.action = GO                         # what the last barrier decided (sync.py)
        self.journal = None                      # a Journal of components to be replayed
        self.on_checkpoint = None                # hook(epoch, window start) at checkpoints
        self.stopped = False                     # stopped after a checkpoint (a stop signal)
        # measured, wall-clock side
        self.stats = {"mpi_messages": 0, "mpi_bytes": 0, "windows": 0, "events": 0}
        self.latencies_s: list[float] = []
        self._status = MPI.Status()

    def add(self, component: Component) -> None:
        component.engine = self
        self.components.append(component)
        self.components.sort(key=lambda c: c.cid)
        self.by_cid[component.cid] = component

    # -- event routing --------------------------------------------------------------------
    def post(self, event: tuple, answer_at: int) -> None:
        """Send `event` (delivered at the window's end); `answer_at`: the earliest time
        its destination could answer it, what the horizon needs of messages in flight."""
        dst = event[3]
        self.stats["events"] += 1
        if dst in self.by_cid:
            self._local_pending.append(event)
            return
        rank = self.placement[dst]
        data = wire.encode(event, time.time())
        self._requests.append((self.comm.Isend([data, self.MPI.BYTE], rank, self.epoch & 1),
                               data))
        self._sent[rank] += 1
        self._sent_min_ts = min(self._sent_min_ts, event[0])
        if dst not in self.paced:
            self._sent_min_unpaced = min(self._sent_min_unpaced, answer_at)
        else:
            self._sent_min_paced = min(self._sent_min_paced, event[0])
        self.stats["mpi_messages"] += 1
        self.stats["mpi_bytes"] += len(data)

    def _complete_sends(self) -> bool:
        """Test our sends (driving MPI progress); forget them once all are done. True
        when none is left."""
        if self._requests and self.MPI.Request.Testall([r for r, _ in self._requests]):
            self._requests.clear()
        return not self._requests

    def _drain(self, expected: int) -> None:
        """Push our own sends and receive this epoch's messages until `expected` of them
        have arrived, or a probe finds none.

        No probe is made once all have arrived: with MPIR_CVAR_ENABLE_HEAVY_YIELD a probe
        that finds nothing sleeps in MPICH (0.1 ms, measured), which every woken rank
        paid at the end of each window. A probe that finds nothing is repeated once:
        MPICH's MPI_Iprobe looks at its queue before it makes progress, so the first
        probe after a message came in misses it (every time, measured with two ranks),
        and waiting for the next poll cost each window a nap (docs/performance.md)."""
        MPI, st, tag = self.MPI, self._status, self.epoch & 1
        self._complete_sends()
        probe = self.comm.Iprobe
        while self._received < expected and (probe(MPI.ANY_SOURCE, tag, st)
                                             or probe(MPI.ANY_SOURCE, tag, st)):
            buf = bytearray(st.Get_count(MPI.BYTE))
            self.comm.Recv([buf, MPI.BYTE], st.Get_source(), tag)
            event, sent_wall = wire.decode(buf)
            if event[4] in self.measured_kinds:
                self.latencies_s.append(time.time() - sent_wall)
            self._deliver(event)
            self._received += 1

    def _deliver(self, event: tuple) -> None:
        if self.journal is not None and event[3] in self.journal.cids:
            self.journal.delivered(event)
        self.by_cid[event[3]].deliver(event)

    # -- the loop -------------------------------------------------------------------------
    def _synchronise(self) -> int:
        """End the current epoch: publish, prove delivery, sleep through the windows in
        which nothing here has work (sync.py), return the global earliest time (and set
        the horizon of the next window)."""
        e = self.epoch
        for c in self.components:
            c.publish(self.sync.pub[e & 1, c.cid])
        if self.blob_source is not None:
            self.sync.write_blob(self.blob_source())
        for event in self._local_pending:
            self._deliver(event)
        self._local_pending.clear()
        own = [(c.next_time(), c) for c in self.components]
        own_next = min([t for t, _ in own], default=INF)
        own_unpaced = min([c.answer_bound(t) for t, c in own if c.cid not in self.paced],
                          default=INF)
        wake = min([c.wake_time(t) for t, c in own], default=INF)
        own_paced = min([t for t, c in own if c.cid in self.paced], default=INF)
        self.sync.write_row(e, self._sent, (min(own_next, self._sent_min_ts),
                                            min(own_unpaced, self._sent_min_unpaced),
                                            own_next, own_unpaced, wake,
                                            min(own_paced, self._sent_min_paced)))
        e, expected, learnt = self.sync.barrier(e, self._complete_sends)
        self.epoch = e                      # later than before if this rank was parked
        self.sync.wait(lambda: self._received >= expected, lambda: self._drain(expected))
        self._received = 0
        self._sent[:] = 0
        self._sent_min_ts = self._sent_min_unpaced = self._sent_min_paced = INF
        if self.blob_sinks:
            blob = self.sync.read_blobs(e)
            for sink in self.blob_sinks:
                sink(blob, int(learnt[START]))
        self.pub = self.sync.published(e)
        self.stats["windows"] += 1
        self.horizon = int(learnt[HORIZON_MIN])
        self.paced_min = int(learnt[PACED_MIN])
        self.action = int(learnt[ACTION])
        return int(learnt[START])

    def set_dormant_ranks(self, ranks: set[int]) -> None:
        """Ranks whose components can never have work: they skip every window.

        Only ranks other than a node's leader can be dormant (leaders combine nodes)."""
        node_ranks = self.sync.node_ranks
        local = [i for i, r in enumerate(node_ranks) if r in ranks and i != 0]
        self.sync.set_dormant(local)
        self.dormant = self.rank in ranks and self.sync.nrank != 0

    def run(self, stop_ns: int, resume: dict | None = None) -> int:
        """Run windows until nothing is left to do or `stop_ns`; return the last window end.
        `resume`: start after the boundary a checkpoint saved (its epoch, window start,
        horizon, published state; the components already restored)."""
        if self.dormant:
            self.stopped = self.sync.wait_finished()
            return 0
        self.sync.quantum, self.sync.stop = self.quantum, stop_ns
        end = self._run(stop_ns, resume)
        if self.sync.nrank == 0:
            self.sync.mark_finished(self.stopped)
        return end

    def _run(self, stop_ns: int, resume: dict | None) -> int:
        if resume is None:
            gmin = self._synchronise()      # epoch 0: initial publication, no simulation
        else:
            self.epoch, gmin, self.horizon = resume["epoch"], resume["start"], resume["horizon"]
            self.paced_min = resume["paced_min"]
            self.sync.resume_at(self.epoch, resume["pub"])
            self.pub = self.sync.published(self.epoch)
        end = 0
        while gmin < INF:
            start = gmin                    # the earliest thing anyone has left to do
            if start >= stop_ns:
                break
            if self.action != GO:
                self.on_checkpoint(self.epoch, start)
                if self.action == CHECKPOINT_AND_STOP:
                    self.stopped = True
                    return start
            end = start + self.quantum
            self.epoch += 1
            if self.journal is not None:
                self.journal.window(self.epoch, start, end, self.horizon, self.pub)
            if self.on_window is not None:
                self.on_window(start)
            unpaced_end = min(end, self.paced_min + 1)    # see the module's docstring
            for c in self.components:
                c.run_window(start, end if c.cid in self.paced else unpaced_end)
            gmin = self._synchronise()
        return min(end, stop_ns) if gmin < INF else end

    def close(self) -> None:
        """The run's sends completed; the WindowSync stays, for the job's next run."""
        if self._requests:
            self.MPI.Request.Waitall([r for r, _ in self._requests])
            self._requests.clear()
