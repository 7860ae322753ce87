"""A set-associative TLB array with LRU replacement.

Entries are keyed by (PCID epoch, virtual page). A full flush of one PCID bumps that
PCID's epoch instead of walking the array, so old entries can no longer match; they stay
in their sets until LRU evicts them (hardware frees them at once: a small difference in
hit rate right after a full flush, noted in docs/simplifications.md).
"""

from collections import OrderedDict

VPAGE_BITS = 36


class TLBArray:
    """`entries` translations in sets of `ways`; lookup, insert, single-page invalidate."""

    __slots__ = ("sets", "nsets", "ways", "entries", "by_pfn")

    def __init__(self, entries: int, ways: int, track_frames: bool = False):
        if entries <= 0 or ways <= 0 or entries % ways:
            raise ValueError(f"TLB of {entries} entries cannot have {ways} ways")
        self.entries = entries
        self.ways = ways
        self.nsets = entries // ways
        self.sets = [OrderedDict() for _ in range(self.nsets)]
        self.by_pfn: dict | None = {} if track_frames else None   # pfn -> keys (ideal policy)

    def lookup(self, key: int, vpage: int):
        s = self.sets[vpage % self.nsets]
        entry = s.get(key)
        if entry is not None:
            s.move_to_end(key)
        return entry

    def insert(self, key: int, vpage: int, entry) -> None:
        s = self.sets[vpage % self.nsets]
        if self.by_pfn is not None:
            replaced = s.get(key)
            if replaced is not None:
                self.by_pfn[replaced[0] >> 2].discard(key)
            self.by_pfn.setdefault(entry[0] >> 2, set()).add(key)
        s[key] = entry
        s.move_to_end(key)
        if len(s) > self.ways:
            old_key, old = s.popitem(last=False)
            if self.by_pfn is not None:
                self.by_pfn[old[0] >> 2].discard(old_key)

    def invalidate(self, key: int, vpage: int) -> None:
        old = self.sets[vpage % self.nsets].pop(key, None)
        if old is not None and self.by_pfn is not None:
            self.by_pfn[old[0] >> 2].discard(key)

    def keys_for_frame(self, pfn: int) -> set:
        """Keys of entries translating to frame `pfn` (needs track_frames)."""
        return self.by_pfn.get(pfn, set()) if self.by_pfn else set()

    def holds(self, key: int, vpage: int) -> bool:
        return key in self.sets[vpage % self.nsets]


def tlb_key(tag: int, vpage: int) -> int:
    """Combine a PCID tag (slot and its flush epoch) with a global virtual page number."""
    return (tag << VPAGE_BITS) | vpage
