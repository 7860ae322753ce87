"""Recording a Perfetto / chrome://tracing timeline of one run (`--trace`), per rank.

Each rank records the components it owns: a CPU its states (a thread running, the
thread in the kernel for a fault or system call, idle) and its IPI handlers; the
coordinator its tasks' waits on shootdowns and on other tasks' flushes, the flow
arrows of every IPI and ack, and the counters. Events are kept as compact tuples in
simulated ns and encoded as Chrome trace-event JSON only at the end (`encode_part`),
after every rank agreed on the time up to which all of them recorded everything
(`cut_ns`), so the file holds a consistent first part of the run when it is capped.

Chrome's JSON format wants the slices of one thread (track) strictly nested, but in
emu's timing model slices of one CPU may overlap: IPI handlers are timed at their
arrival even when the CPU ran past it (docs/design.md), and kernel tasks serving one
CPU may wait at the same time (one in I/O, another faulting). So each CPU has three
tracks: its states (contiguous by construction), its IPI handlers and its kernel
tasks' waits; the last two, and the kernel threads' track, open a further lane
("#2", ...) whenever a slice would overlap one already on the track.

Nothing here is read back by the simulation; a component holds `trace = None` unless
`--trace` is given, so the hot paths pay one None check and never per TLB access.
"""

import json
from dataclasses import dataclass

import numpy as np

from emu.engine.collect import stream_to_root
from emu.errors import EmuError
from emu.workload.patterns import EXEC, READ, WRITE

DEFAULT_CAP_BYTES = 200 * 1000 * 1000
CAP_ENV = "EMU_TRACE_CAP_BYTES"      # tests set a small cap
IPI_BUCKET_NS = 100_000              # the "IPIs per 100 µs" counter
INF = 1 << 62
STATE, IRQ, WAITS = 0, 1, 2          # the kinds of a CPU's tracks
KERNEL_CPU = -1                      # kernel threads' track (kswapd, mover, NUMA scan)
FAULT_NAMES = {READ: "page fault (read)", WRITE: "page fault (write)", EXEC: "page fault (exec)"}
_KIND_NAMES = {STATE: "", IRQ: " IPI handlers", WAITS: " kernel waits"}


@dataclass(frozen=True)
class TraceOptions:
    """What every rank needs to record one run: its process id in the file, the span
    (simulated ns, [start, end)) and the run's byte budget (None: unlimited)."""
    pid: int
    span: tuple[int, int] | None
    run_cap: int | None


def parse_span(text: str) -> tuple[int, int]:
    """`START:END` in simulated ns (underscores allowed) -> (start, end)."""
    try:
        a, b = text.split(":")
        span = int(a), int(b)
    except ValueError:
        raise EmuError(f"--trace-span must be START:END in simulated ns, got '{text}'") from None
    if not 0 <= span[0] < span[1]:
        raise EmuError(f"--trace-span needs 0 <= START < END, got '{text}'")
    return span


def track_id(cpu: int, kind: int, lane: int = 0) -> int:
    """The tid of a track: grouped by CPU (the kernel threads' first), then kind, lane."""
    return ((cpu + 1) << 16) | (kind << 12) | min(lane, 4095)


def track_name(cpu: int, kind: int, lane: int) -> str:
    base = "kernel threads" if cpu == KERNEL_CPU else f"CPU {cpu}{_KIND_NAMES[kind]}"
    return base if lane == 0 else f"{base} #{lane + 1}"


def flow_id(pid: int, token: int, target: int, ack: bool) -> int:
    """Unique per run, shootdown, target and direction; below 2**53 (JavaScript ints)."""
    return (((pid << 31 | token) << 12 | target) << 1) | ack


def _us(ns: float) -> str:
    """Trace-event timestamps are in µs; keep the ns (and half ns) exactly."""
    return f"{ns / 1000:.4f}".rstrip("0").rstrip(".")


class Recorder:
    """The events of the components on one rank during one run."""

    def __init__(self, opts: TraceOptions, active_ranks: int, cost: dict, state=None):
        self.pid = opts.pid
        self.lo, self.hi = opts.span or (0, INF)
        self.budget = None if opts.run_cap is None else opts.run_cap // active_ranks
        self.used = 0
        self.cut = INF                   # recording stopped at this window start
        self.window = 0
        self.events: list[tuple] = []    # (kind, t0, t1, text); see encode_part
        self.tracks: dict[int, str] = {}
        self.lanes: dict[tuple[int, int], list[int]] = {}
        self.open: dict[int, tuple[str, int, str]] = {}   # CPU -> its current state
        self.pending: dict[int, list] = {}                # shootdown token -> its story
        self.ipi_buckets: dict[int, int] = {}
        self.lat = cost["ipi_latency_ns"]
        self.per = cost["ipi_per_target_ns"]
        self.state = state               # the coordinator's rank: Timeline.state
        self.last_counters: dict[str, object] = {}

    # -- bookkeeping -------------------------------------------------------------------------
    def _add(self, kind: str, t0: float, t1: float, text: str) -> None:
        if self.budget is not None:
            if self.cut < INF and not (kind == "X" and t0 < self.cut):
                return                   # stopped: only slices begun before the cut
            self.used += len(text) + 48  # ph, ts and dur are added when encoding
            if self.used > self.budget and self.cut == INF:
                self.cut = self.window
        self.events.append((kind, t0, t1, text))

    def _slice(self, tid: int, name: str, t0: int, t1: int, args: str = "") -> None:
        if t1 <= t0 or t1 <= self.lo or t0 >= self.hi:
            return
        extra = f',"args":{args}' if args else ""
        self._add("X", t0, t1, f'"pid":{self.pid},"tid":{tid},"name":"{name}"{extra}')

    def _flow(self, ph: str, tid: int, fid: int, at: float, other: float) -> None:
        """A flow end at `at` (half a ns inside its slice, so that viewers bind it to
        that slice whatever their rule for ties), the other end at `other`: kept only
        if both ends are (both sides of a flow decide alike)."""
        lo, hi = min(at, other), max(at, other)
        if lo < self.lo or hi >= self.hi:
            return
        bp = ',"bp":"e"' if ph == "f" else ""
        self._add("F", lo, hi, f'{{"ph":"{ph}","pid":{self.pid},"tid":{tid},"ts":{_us(at)},'
                               f'"id":{fid},"cat":"ipi","name":"IPI"{bp}}}')

    def _lane(self, cpu: int, kind: int, t0: int, t1: int) -> int:
        """The first lane of the track whose slices all end by `t0` (slices arrive
        roughly in time order; a lane's latest end stands for all of its slices)."""
        ends = self.lanes.setdefault((cpu, kind), [])
        for i, end in enumerate(ends):
            if end <= t0:
                ends[i] = t1
                return self._track(cpu, kind, i)
        ends.append(t1)
        return self._track(cpu, kind, len(ends) - 1)

    def _track(self, cpu: int, kind: int, lane: int = 0) -> int:
        tid = track_id(cpu, kind, lane)
        if tid not in self.tracks:
            self.tracks[tid] = track_name(cpu, kind, lane)
        return tid

    def window_start(self, start: int) -> None:
        """The engine's per-window hook: where a cap would cut; counters (coordinator)."""
        self.window = start
        if self.state is None or not self.lo <= start < self.hi:
            return
        _ipis, free, luf = self.state()
        for name, value in [(f"free pages node {n}", v) for n, v in enumerate(free)] + \
                [("LUF pending pages", luf)]:
            if self.last_counters.get(name) != value:
                self.last_counters[name] = value
                self._counter(name, start, value)

    def _counter(self, name: str, t: int, value: int) -> None:
        self._add("C", t, t, f'{{"ph":"C","pid":{self.pid},"ts":{_us(t)},"name":"{name}",'
                             f'"args":{{"value":{value}}}}}')

    # -- CPUs --------------------------------------------------------------------------------
    def cpu_state(self, cpu: int, name: str, t: int, args: str = "") -> None:
        """`cpu` does `name` from `t` on (until its next state)."""
        cur = self.open.get(cpu)
        if cur is not None:
            if cur[0] == name and cur[2] == args:
                return
            self._slice(self._track(cpu, STATE), cur[0], cur[1], t, cur[2])
        self.open[cpu] = (name, t, args)

    def user(self, cpu: int, th, t: int) -> None:
        self.cpu_state(cpu, f"user t{th.tid}", t, f'{{"tid":{th.tid},"mm":{th.mm}}}')

    def fault(self, cpu: int, th, kind: int, vpage: int, t: int) -> None:
        self.cpu_state(cpu, FAULT_NAMES[kind], t, f'{{"tid":{th.tid},"vpage":{vpage}}}')

    def syscall(self, cpu: int, th, op: str, t: int) -> None:
        self.cpu_state(cpu, f"syscall {op}", t, f'{{"tid":{th.tid}}}')

    def ipi(self, cpu: int, token: int, arrival: int, spent: int, ack_at: int) -> None:
        """The handler on `cpu`, timed from the IPI's arrival; its ack leaves at the end."""
        end = arrival + spent
        tid = self._lane(cpu, IRQ, arrival, end)
        self._slice(tid, "IPI handler", arrival, end, f'{{"token":{token}}}')
        self._flow("f", tid, flow_id(self.pid, token, cpu, False), arrival + 0.5,
                   arrival - self.lat + 0.5)
        self._flow("s", tid, flow_id(self.pid, token, cpu, True), end - 0.5, ack_at - 0.5)

    def finish(self, cpus) -> None:
        """Close every CPU's last state at its clock."""
        for c in cpus:
            if c.cid in self.open:
                self.cpu_state(c.cid, "", c.clock)

    # -- the coordinator ---------------------------------------------------------------------
    def shootdown(self, token: int, proc, t: int, targets, source: str) -> None:
        """A task's shootdown sent at `t` on its CPU's behalf; see docs/design.md."""
        sends = [(c, t + i * self.per) for i, c in enumerate(targets)]
        for _c, s in sends:
            b = s // IPI_BUCKET_NS
            self.ipi_buckets[b] = self.ipi_buckets.get(b, 0) + 1
        self.pending[token] = [proc, t, sends, source, []]

    def ack(self, token: int, target: int, t: int, resumed: int, taken: bool = True) -> None:
        """An ack from `target` arrived at `t`; the task resumed at `resumed` (or -1). An
        IPI the target did not take (Cpu._unneeded_ipi) is dropped from the story."""
        story = self.pending[token]
        if taken:
            story[4].append((target, t))
        else:
            sent = next(s for c, s in story[2] if c == target)
            story[2] = [(c, s) for c, s in story[2] if c != target]
            self.ipi_buckets[sent // IPI_BUCKET_NS] -= 1
        if resumed < 0:
            return
        del self.pending[token]
        proc, t0, sends, source, acks = story
        cpu = proc.cpu if proc.tid >= 0 else KERNEL_CPU
        tid = self._lane(cpu, WAITS, t0, resumed)
        who = "" if proc.tid >= 0 else f"{proc.name}: "
        self._slice(tid, f"{who}shootdown wait ({source})", t0, resumed,
                    f'{{"targets":{len(sends)},"task":"{proc.name}","cpu":{proc.cpu},'
                    f'"tid":{proc.tid},"token":{token}}}')
        for c, s in sends:
            self._flow("s", tid, flow_id(self.pid, token, c, False), s + 0.5, s + self.lat + 0.5)
        for c, a in acks:
            self._flow("f", tid, flow_id(self.pid, token, c, True), a - 0.5, a - self.lat - 0.5)

    def flush_wait(self, proc, t0: int, t1: int) -> None:
        """`proc` waited from `t0` to `t1` on a flush another task had in flight."""
        cpu = proc.cpu if proc.tid >= 0 else KERNEL_CPU
        who = "" if proc.tid >= 0 else f"{proc.name}: "
        if t1 > t0:
            self._slice(self._lane(cpu, WAITS, t0, t1), f"{who}wait on another task's flush",
                        t0, t1, f'{{"task":"{proc.name}","cpu":{proc.cpu},"tid":{proc.tid}}}')

    def ipi_counter(self) -> None:
        """IPIs sent per 100 µs of simulated time (by send time), as a step counter."""
        name = "IPIs per 100 us"
        for b in sorted(self.ipi_buckets):
            t = b * IPI_BUCKET_NS
            if self.lo <= t and t + IPI_BUCKET_NS <= self.hi:   # few: outside the budget
                self.events.append(("B", t, t + IPI_BUCKET_NS,
                                    f'"{name}","args":{{"value":{self.ipi_buckets[b]}}}'))
                if b + 1 not in self.ipi_buckets:
                    t += IPI_BUCKET_NS
                    self.events.append(("B", t, t, f'"{name}","args":{{"value":0}}'))

    # -- the end -----------------------------------------------------------------------------
    def encode_part(self, cut_ns: int) -> bytes:
        """This rank's events up to `cut_ns` (every rank recorded everything before it)
        as comma-separated JSON objects; slices clipped to [span start, cut)."""
        lo, hi = self.lo, min(self.hi, cut_ns)
        pid, out = self.pid, []
        for kind, t0, t1, text in self.events:
            if kind == "X":
                a, b = max(t0, lo), min(t1, hi)
                if b > a:
                    out.append(f'{{"ph":"X","ts":{_us(a)},"dur":{_us(b - a)},{text}}}')
            elif kind == "F":
                if lo <= t0 and t1 < hi:
                    out.append(text)
            elif kind == "C":
                if lo <= t0 < hi:
                    out.append(text)
            elif t1 <= hi:                                    # "B": IPI bucket counter
                out.append(f'{{"ph":"C","pid":{pid},"ts":{_us(t0)},"name":{text}}}')
        for tid, name in sorted(self.tracks.items()):
            out.append(json.dumps({"ph": "M", "pid": pid, "tid": tid, "name": "thread_name",
                                   "args": {"name": name}}))
            out.append(json.dumps({"ph": "M", "pid": pid, "tid": tid,
                                   "name": "thread_sort_index", "args": {"sort_index": tid}}))
        return ",\n".join(out).encode()


def gather_trace(MPI, comm, rec: Recorder, end_ns: int, sink) -> tuple[int, int]:
    """Agree on the cut (the earliest time a rank's cap stopped it, and the run's end),
    then hand every rank's part to rank 0's `sink`, one rank at a time. Returns
    (cap cut or INF, run end)."""
    mine = np.array([rec.cut, -end_ns], dtype=np.int64)
    agreed = np.empty(2, dtype=np.int64)
    comm.Allreduce(mine, agreed, op=MPI.MIN)
    cut, end = int(agreed[0]), -int(agreed[1])
    stream_to_root(MPI, comm, rec.encode_part(min(cut, end)), sink)
    return cut, end
