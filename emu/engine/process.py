"""Processes as generators (SimPy style) inside one component.

A process yields requests; `Delay(ns)` resumes it `ns` later, `Wait(key)` parks it
until `notify(key)`; anything else is handed to the owning component's dispatcher
(for example a TLB shootdown that resumes when the acks are in). Each process keeps its
own time, so kernel work on different simulated CPUs overlaps as it does on real ones.
"""

import heapq
from dataclasses import dataclass


@dataclass(slots=True)
class Delay:
    ns: int


@dataclass(slots=True)
class Wait:
    key: object


class Process:
    """A running generator and its context: time, CPU, thread served, flush source,
    whether that thread has left its CPU to sleep."""

    __slots__ = ("gen", "t", "cpu", "name", "kthread", "tid", "source", "asleep")

    def __init__(self, t: int, cpu: int, name: str, kthread: bool, tid: int):
        self.gen, self.t, self.cpu, self.name = None, t, cpu, name
        self.kthread, self.tid, self.source = kthread, tid, None
        self.asleep = False


class ProcessRunner:
    """Runs a component's processes in (time, sequence) order."""

    def __init__(self, dispatch):
        self._heap: list = []
        self._seq = 0
        self._waiting: dict = {}
        self._dispatch = dispatch        # dispatch(process, request) for other requests

    def spawn(self, body, t: int, cpu: int, name: str = "", kthread: bool = False,
              tid: int = -1) -> Process:
        """Start `body(process)`, a generator function, at time `t`."""
        proc = Process(t, cpu, name, kthread, tid)
        proc.gen = body(proc)
        self.resume(proc, t)
        return proc

    def resume(self, proc: Process, t: int, value=None) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, proc, value))

    def notify(self, key, t: int) -> None:
        for proc in self._waiting.pop(key, ()):
            self.resume(proc, max(t, proc.t))

    def next_time(self) -> int:
        return self._heap[0][0] if self._heap else 1 << 62

    def step(self) -> None:
        t, _, proc, value = heapq.heappop(self._heap)
        proc.t = max(proc.t, t)
        try:
            req = proc.gen.send(value)
        except StopIteration:
            return
        if isinstance(req, Delay):
            self.resume(proc, proc.t + req.ns)
        elif isinstance(req, Wait):
            self._waiting.setdefault(req.key, []).append(proc)
        else:
            self._dispatch(proc, req)
