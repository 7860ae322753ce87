"""A component's inputs, window by window, so that it can be rebuilt by running it again.

A checkpoint saves most components as data (snapshot.py), but the coordinator's state
includes running kernel tasks: generators, which Python cannot save. Its behaviour is a
function of what reaches it from outside, so the engine records that (the events
delivered to it, the window, the horizon, the published state it reads) and a resumed
run replays it: the component alone, on one rank, without messages or barriers, until
it is where it was at the checkpoint (rollback recovery by message logging).
"""

import pickle
import zlib

import numpy as np

SEAL_WINDOWS = 512      # windows per compressed chunk: the journal is kept and saved as
                        # chunks (about 1/5 of the objects' size), sealed once, so each
                        # checkpoint writes the bytes instead of pickling all history again


class Journal:
    """The inputs of the components `cids` on this rank since the run began."""

    def __init__(self, cids):
        self.cids = frozenset(cids)
        self.chunks: list[bytes] = []    # sealed windows
        self.windows: list[tuple] = []   # (epoch, start, end, horizon, events, rows, values)
        self.events: list[tuple] = []    # delivered since the last window began
        self.pub: np.ndarray | None = None   # the published state the last window read

    def delivered(self, event: tuple) -> None:
        self.events.append(event)

    def window(self, epoch: int, start: int, end: int, horizon: int, pub: np.ndarray) -> None:
        """A window begins: what was delivered before it, and the published state's rows
        that changed since the previous window (most do not)."""
        if self.pub is None:
            rows = np.arange(len(pub))
        else:
            rows = np.flatnonzero((pub != self.pub).any(axis=1))
        self.pub = pub.copy()
        self.windows.append((epoch, start, end, horizon, self.events, rows, pub[rows]))
        self.events = []
        if len(self.windows) >= SEAL_WINDOWS:
            self._seal()

    def _seal(self) -> None:
        if self.windows:
            self.chunks.append(zlib.compress(pickle.dumps(self.windows, protocol=5), 1))
            self.windows = []

    def state(self) -> tuple:
        self._seal()
        return self.chunks, self.events, self.pub

    @classmethod
    def restored(cls, cids, state: tuple) -> "Journal":
        journal = cls(cids)
        journal.chunks, journal.events, journal.pub = state
        return journal

    def all_windows(self):
        for chunk in self.chunks:
            yield from pickle.loads(zlib.decompress(chunk))
        yield from self.windows


class ReplayEngine:
    """What a component sees of its engine while it is replayed: the epoch, the horizon
    and the published state of the window; what it sends is dropped (it was delivered
    before the checkpoint)."""

    def __init__(self, quantum: int):
        self.quantum = quantum
        self.epoch = self.horizon = 0
        self.pub = None

    def post(self, event: tuple, answer_at: int) -> None:
        pass


def replay(components: list, journal: Journal, quantum: int, hooks=(), after=()) -> None:
    """Run `components` through the journal's windows. `hooks(start)` run before each
    window as the engine's on_window did; `after()` at each window's end (e.g. the
    coordinator's page-table log, emptied as the engine would)."""
    engine = ReplayEngine(quantum)
    by_cid = {c.cid: c for c in components}
    for c in components:
        c.engine = engine
    pub = None
    for epoch, start, end, horizon, events, rows, values in journal.all_windows():
        for event in events:
            by_cid[event[3]].deliver(event)
        pub = (values if pub is None else pub).copy()   # a new array per window, as the
        pub[rows] = values                              # engine's (kernel.py caches by it)
        engine.epoch, engine.horizon, engine.pub = epoch, horizon, pub
        for hook in hooks:
            hook(start)
        for c in components:
            c.run_window(start, end)
        for fn in after:
            fn()
    for event in journal.events:
        by_cid[event[3]].deliver(event)
