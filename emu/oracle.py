"""The safety oracle: referees every access made through a TLB entry.

Ground truth comes from the replica (frame contents, content versions, what each
address is mapped to), as of the start of the current window. An access is safe when
the TLB entry still matches the page table, or when the frame still holds the same
content at its newest version and the address has not been mapped to something else
(the LUF argument). Violations:

- reallocated-frame: the frame now holds other content;
- write-through-stale-entry: a write into a frame freed since the entry was filled;
- stale-read-after-remap: the address now maps other content (MAP_FIXED, a new mmap);
- stale-read-after-divergence: the content was written elsewhere (write(), another
  mapping) so the frame's copy is out of date.

A stale entry used within one window of the change that made it stale is judged on the
state at the window's start (docs/design.md: the oracle's resolution is one window).
"""

from emu.mm.replica import frame_cid, frame_ver

KINDS = ("reallocated-frame", "write-through-stale-entry", "stale-read-after-remap",
         "stale-read-after-divergence")


def judge(replica, vpage: int, entry: tuple, write: bool) -> str | None:
    """The violation kind for an access through a stale `entry`, or None if safe."""
    pte, cid, gen = entry
    pfn = pte >> 2
    frame = replica.frame[pfn]
    if frame_cid(frame) != cid:
        return "reallocated-frame"
    if write and replica.frame_gen[pfn] != gen:
        return "write-through-stale-entry"
    mapped = replica.vcid[vpage]
    if mapped != -1 and mapped != cid:
        return "stale-read-after-remap"
    if replica.latest[cid] != frame_ver(frame):
        return "stale-read-after-divergence"
    return None


class OracleLog:
    """Counts checks and violations on one CPU; keeps the first few for the report."""

    def __init__(self, max_listed: int):
        self.checked = 0
        self.violations = 0
        self.by_kind = dict.fromkeys(KINDS, 0)
        self.first: list[dict] = []
        self.max_listed = max_listed

    def record(self, kind: str, cpu: int, time_ns: int, mm: int, vpage: int, pfn: int) -> None:
        self.violations += 1
        self.by_kind[kind] += 1
        if len(self.first) < self.max_listed:
            self.first.append({"kind": kind, "cpu": cpu, "time_ns": time_ns, "mm": mm,
                               "vpage": vpage, "pfn": pfn})
