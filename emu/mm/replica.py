"""Page tables and frame state as every rank sees them, one window late.

The coordinator owns the authoritative copy (a MasterReplica) and logs each change
with its simulated time; once per window the log is broadcast through shared memory
and every rank applies it to its own Replica. CPUs walk their rank's replica on a TLB
miss instead of paying a round trip to the coordinator, and the safety oracle reads
frame state from it. The kernel runs up to the least of the CPUs' lookahead bounds
(engine.py), past some CPUs' clocks, so a page-table entry the kernel changed after a
CPU's clock is read as it was at that clock (Replica.at).

The log comes in sections: one for frames and contents, which any CPU may read, and one
per mm for its page-table entries and tlb_gen, which only CPUs running that mm's threads
read (threads stay on their CPU). A rank applies the common section and its own mms'
(about 40% fewer rows in the default job, whose three processes share the machine).

PTE encoding: -1 none; otherwise (pfn << 2) | writable << 1 | accessible, where a
present but inaccessible entry is a NUMA hint (PROT_NONE) or migration entry. A frame's
content and its version are one entry (pack_frame): they change together when content is
placed, and as two rows they were 30% of the log every rank applies.
"""

from bisect import bisect_right
from collections import deque

import numpy as np

PTE, VCID, FRAME, FRAME_GEN, LATEST, MM_GEN, MM_GEN_AT, CHANGES = range(8)
TIME = -1               # a log row (TIME, 0, t): the rows after it were set at time t
SECTION = -2            # a log row (SECTION, s, n): the n rows after it are section s's
COMMON = 0              # section of frame and content rows; section 1 + m: mm m's rows
NO_PTE = -1
APPLY_CHUNK = 4096      # log rows turned into Python objects at a time
GEN_BITS = 24           # an MM_GEN_AT row's value: (time << GEN_BITS) | gen's low bits
GEN_HISTORY = 64        # bumps remembered per mm
VER_BITS = 32           # a FRAME entry: (content id << VER_BITS) | version


class GenHistory:
    """When each mm's tlb_gen was bumped, for the last GEN_HISTORY bumps: a CPU taking an
    IPI late (it ran past the arrival within the window) must catch up to the gen the
    mm had at the arrival, as flush_tlb_func() reads it then, not to the newer gen the
    replica already holds; otherwise flushes begun after the arrival fold into it.
    Filled by log rows (an item assignment appends), so Replica.apply stays generic."""

    __slots__ = ("bumps",)

    def __init__(self, nr_mms: int):
        self.bumps = [deque(maxlen=GEN_HISTORY) for _ in range(nr_mms)]

    def __setitem__(self, mm, packed) -> None:
        if isinstance(mm, slice):                    # Replica.load
            self.bumps = [deque(b, maxlen=GEN_HISTORY) for b in packed.bumps]
            return
        self.bumps[mm].append(packed)               # the oldest drops out

    def __eq__(self, other) -> bool:
        return isinstance(other, GenHistory) and self.bumps == other.bumps

    def gen_at(self, mm: int, t: int, gen_now: int) -> int:
        """The mm's gen at simulated time `t`, given its gen now. When all of the last
        GEN_HISTORY bumps are later than `t`, it is the gen before the oldest of them:
        then newer than the truth, as the replica's gen always was."""
        gen = gen_now
        mask = (1 << GEN_BITS) - 1
        for packed in reversed(self.bumps[mm]):
            if packed >> GEN_BITS <= t:
                break
            gen = gen_now - ((gen_now - (packed & mask)) & mask) - 1
        return gen


class Changes:
    """The recent changes of each virtual page's entries (PTE, VCID), as
    (time, array, value before), in time order: what a walk at an earlier time must
    still see. Kept while they can be later than some CPU's clock, i.e. later than the
    window's start (prune)."""

    __slots__ = ("by_vpage",)

    def __init__(self):
        self.by_vpage: dict[int, list] = {}

    def __setitem__(self, key, value) -> None:
        if isinstance(key, slice):                   # Replica.load
            self.by_vpage = {vp: list(ch) for vp, ch in value.by_vpage.items()}
            return
        self.by_vpage.setdefault(key, []).append(value)

    def prune(self, start: int) -> None:
        """Forget changes at or before `start`: every CPU's clock is past them."""
        if self.by_vpage:
            self.by_vpage = {vp: kept for vp, ch in self.by_vpage.items()
                             if (kept := [c for c in ch if c[0] > start])}


def make_pte(pfn: int, writable: bool, accessible: bool = True) -> int:
    return (pfn << 2) | (2 if writable else 0) | (1 if accessible else 0)


def pte_pfn(pte: int) -> int:
    return pte >> 2


def pte_write(pte: int) -> bool:
    return pte >= 0 and bool(pte & 2)


def pte_accessible(pte: int) -> bool:
    return pte >= 0 and bool(pte & 1)


def pack_frame(cid: int, ver: int) -> int:
    """A FRAME entry: content id `cid` (negative for none or the kernel's) at version
    `ver` (0 <= ver < 2**VER_BITS)."""
    return cid << VER_BITS | ver


def frame_cid(frame: int) -> int:
    return frame >> VER_BITS


def frame_ver(frame: int) -> int:
    return frame & ((1 << VER_BITS) - 1)


class Replica:
    """Flat lists indexed by vpage, frame, content id and mm (fast scalar reads)."""

    def __init__(self, layout, nr_mms: int, mms=None):
        """`mms`: the mms whose entries this replica follows (default all); the other
        mms' page-table entries and tlb_gen stay as they were and must not be read."""
        V, F, C = layout.nr_vpages, layout.nr_frames, layout.nr_cids
        self.sections = {COMMON, *(1 + m for m in (range(nr_mms) if mms is None else mms))}
        self.arrays = [
            [NO_PTE] * V,   # PTE
            [-1] * V,       # VCID: content the address is mapped to (-1: unmapped)
            [pack_frame(-1, 0)] * F,   # FRAME: content held by the frame (kept when
                                       # freed) and its version there (pack_frame)
            [0] * F,        # FRAME_GEN: bumped each time the frame is freed
            [0] * C,        # LATEST: newest version of each content
            [1] * nr_mms,   # MM_GEN: mm->context.tlb_gen
            GenHistory(nr_mms),   # MM_GEN_AT: when it was bumped
            Changes(),            # CHANGES: entries' recent values, for earlier clocks
        ]
        (self.pte, self.vcid, self.frame, self.frame_gen,
         self.latest, self.mm_gen, self.mm_gen_at, self.changes) = self.arrays

    def at(self, array: int, vpage: int, t: int) -> int:
        """A page's PTE or VCID as it was at simulated time `t`."""
        changes = self.changes.by_vpage.get(vpage)
        if changes is not None:
            for ct, a, old in changes:
                if ct > t and a == array:
                    return old
        return self.arrays[array][vpage]

    def apply(self, blob: bytes, start: int) -> None:
        """Apply a change log (one window's, or several end to end) before the window
        that starts at `start`: the sections this replica follows, each on its own (a
        section's times only rise; sections touch different entries). The rows set
        later than `start` are applied one by one, each PTE or VCID change remembered
        (Changes). Of the others only the last value logged for each entry counts, so a
        long log (a rank that slept through windows, engine/sync.py) sets each entry
        once (_apply_long). A short log, most windows', is one loop over its rows: the
        dozen numpy calls that find the late rows cost more than the loop."""
        self.changes.prune(start)
        for parts in self._sections_of(memoryview(blob).cast("q")).values():
            rows = b"".join(parts)
            if len(rows) > 3 * 8 * APPLY_CHUNK:
                self._apply_long(rows, start)
            else:
                self._apply_rows(memoryview(rows).cast("q").tolist(), start)

    def _sections_of(self, q: memoryview) -> dict[int, list[memoryview]]:
        """The rows of each followed section, in log order, as slices of `q`."""
        parts: dict[int, list[memoryview]] = {}
        i, n = 0, len(q)
        while i < n:
            end = i + 3 + 3 * q[i + 2]
            if q[i + 1] in self.sections:
                parts.setdefault(q[i + 1], []).append(q[i + 3:end])
            i = end
        return parts

    def _apply_long(self, blob: bytes, start: int) -> None:
        """apply() for a long log: numpy finds the rows after `start` and, before them,
        the last value of each entry. A chunk of rows at a time: the first window's log
        sets every virtual page, and as one list of lists it was a peak of ~150 bytes
        per page on every rank with threads."""
        arrays = self.arrays
        rows = np.frombuffer(blob, dtype=np.int64).reshape(-1, 3)
        late = np.flatnonzero((rows[:, 0] == TIME) & (rows[:, 2] > start))
        cut = int(late[0]) if len(late) else len(rows)
        rows, tail = rows[:cut], rows[cut:]
        rows = rows[rows[:, 0] != TIME]
        if len(rows) > APPLY_CHUNK:          # worth sorting only for a long catch-up
            bumps = rows[:, 0] == MM_GEN_AT  # a history: every row, in order
            for _, mm, packed in rows[bumps].tolist():
                self.mm_gen_at[mm] = packed
            rows = rows[~bumps]
            _, last = np.unique((rows[::-1, 0] << 40) | rows[::-1, 1], return_index=True)
            rows = rows[len(rows) - 1 - last]
        for first in range(0, len(rows), APPLY_CHUNK):
            for a, i, v in rows[first:first + APPLY_CHUNK].tolist():
                arrays[a][i] = v
        self._apply_rows(tail.ravel().tolist(), start)     # begins with a late time mark

    def _apply_rows(self, flat: list[int], start: int) -> None:
        """Apply log rows (flattened triples) in order; from the first time mark later
        than `start` on, remember each PTE or VCID change with its time (Changes)."""
        arrays, changes = self.arrays, self.changes
        t = None                             # set once past `start`: rows from then on
        for a, i, v in zip(flat[0::3], flat[1::3], flat[2::3], strict=True):
            if a == TIME:
                if t is not None or v > start:
                    t = v
                continue
            if t is not None and a <= VCID:
                changes[i] = (t, a, arrays[a][i])
            arrays[a][i] = v

    def load(self, arrays: list[list[int]]) -> None:
        """Take another replica's contents (resuming a checkpoint)."""
        for mine, theirs in zip(self.arrays, arrays, strict=True):
            mine[:] = theirs


class MasterReplica(Replica):
    """The coordinator's authoritative copy; every change is logged for the others, at
    the kernel's time `now` (set by the coordinator), in its section. It keeps the
    recent changes too, so a checkpoint holds them (the coordinator prunes them each
    window)."""

    def __init__(self, layout, nr_mms: int):
        super().__init__(layout, nr_mms)
        self._mm_base = layout.mm_base             # vpage ranges of the mms, in order
        self._logs: list[list[int]] = [[] for _ in range(1 + nr_mms)]
        self._logged_at = [-1] * (1 + nr_mms)      # each section begins with its time
        self.now = 0

    def set(self, array: int, index: int, value: int) -> None:
        if array <= VCID:
            section = bisect_right(self._mm_base, index)      # 1 + the vpage's mm
            self.changes[index] = (self.now, array, self.arrays[array][index])
        elif array >= MM_GEN:
            section = 1 + index
        else:
            section = COMMON
        log = self._logs[section]
        if self._logged_at[section] != self.now:
            log += (TIME, 0, self.now)
            self._logged_at[section] = self.now
        self.arrays[array][index] = value
        log += (array, index, value)

    def take_log(self) -> bytes:
        out: list[int] = []
        for section, log in enumerate(self._logs):
            if log:
                out += (SECTION, section, len(log) // 3)
                out += log
                self._logs[section] = []
                self._logged_at[section] = -1
        return np.array(out, dtype=np.int64).tobytes()
