"""Components exchange timestamped events; each runs its own events in a window.

An event is the tuple (time_ns, src, seq, dst, kind, payload). Simultaneous events are
ordered by (time, source component, sequence), never by arrival order or rank, so the
results do not depend on where components are placed (SST's determinism rule).
"""

import heapq

INF = (1 << 62)


class Component:
    """One simulated entity (a CPU, the coordinator) with its own clock and event queue.

    Events sent during a window are delivered at its end, whether the destination lives
    on this rank or another (placement never changes results), and are handled at their
    timestamp, or at the receiver's clock if the receiver already ran past it.
    """

    def __init__(self, cid: int):
        self.cid = cid
        self.clock = 0
        self._seq = 0
        self._queue: list[tuple] = []
        self.engine = None  # set by Engine.add

    # -- sending and receiving ------------------------------------------------------------
    def send(self, dst: int, kind: int, payload, ts: int, answer_at: int | None = None) -> None:
        """Post an event to component `dst`, to be handled at simulated time `ts` or later;
        `answer_at`: the earliest time `dst` could answer it (default `ts`)."""
        self._seq += 1
        self.engine.post((ts, self.cid, self._seq, dst, kind, payload),
                         ts if answer_at is None else answer_at)

    def deliver(self, event: tuple) -> None:
        heapq.heappush(self._queue, event)

    def next_event_time(self) -> int:
        return self._queue[0][0] if self._queue else INF

    def pop_event(self) -> tuple:
        """The earliest queued event (the queue must not be empty)."""
        return heapq.heappop(self._queue)

    # -- to be provided by models ---------------------------------------------------------
    def run_window(self, start: int, end: int) -> None:
        """Handle queued events and local activity with times in [start, end)."""
        raise NotImplementedError

    def next_time(self) -> int:
        """Earliest simulated time this component has anything to do (INF if none)."""
        return self.next_event_time()

    def answer_bound(self, next_time: int) -> int:
        """Earliest simulated time at which this component could send a paced component
        something that must arrive in order, given its `next_time()`. Models that know
        the least a message costs them (their lookahead) return more."""
        return next_time

    def wake_time(self, next_time: int) -> int:
        """Earliest simulated time at which this component must run a window if no event
        reaches it, given its `next_time()`: its rank sleeps through windows that end
        before (sync.py). Models whose run_window acts on more than their own events and
        timers return less."""
        return next_time

    def publish(self, slots) -> None:
        """Write this component's published state (visible to all one window later)."""
