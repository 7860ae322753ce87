"""The policy interface: the hook points where the kernel flushes, defers or checks.

The memory-management code calls these at the same places the kernel calls its own
hooks: batched unmap (rmap.c set_tlb_ubc_flush_pending / try_to_unmap_flush), free of
an unmapped page, page take-off from the allocator (pcp and buddy), the end of a VMA's
page-table walk (tlb_end_vma: munmap, mprotect, madvise, the NUMA scan), page faults,
buffered write and truncate of a file, and flush_tlb_batched_pending. Generator hooks
may yield shootdowns.
"""

from dataclasses import dataclass, field

from emu.mm.tlb import flush_tlb_mm
from emu.protocol import FULL, NO_MM


@dataclass
class TlbUbc:
    """struct tlbflush_unmap_batch: CPUs to flush before the unmapped pages are freed."""
    cpumask: set = field(default_factory=set)
    writable: bool = False
    flush_required: bool = False
    folio_ro: set = field(default_factory=set)       # this folio's read-only deferrals
    folio_writable: bool = False
    folio_mms: set = field(default_factory=set)      # mms that mapped this folio
    folio_file: int = -1                             # its file (folio_mapping()), or -1
    luf_cpumask: set = field(default_factory=set)    # LUF: read-only folios' CPUs
    luf_folios: list = field(default_factory=list)


class ShootdownPolicy:
    """Vanilla behaviour at every hook; subclasses change what they must."""

    name = "base"

    def __init__(self, kernel):
        self.k = kernel
        self.stats: dict[str, int] = {}

    # -- rmap.c ---------------------------------------------------------------------------
    def should_defer_flush(self, mm, cpu: int) -> bool:
        """arch_tlbbatch_should_defer(): only if another CPU is in mm_cpumask."""
        return any(c != cpu for c in self.k.cpumask(mm.id))

    def set_tlb_ubc_flush_pending(self, batch: TlbUbc, mm, writable: bool) -> None:
        """One PTE of the folio being unmapped was cleared with its flush deferred."""
        k = self.k
        k.inc_mm_tlb_gen(mm.id)
        if writable:
            batch.cpumask.update(k.cpumask(mm.id))
        else:
            batch.folio_ro.update(k.cpumask(mm.id))
        batch.folio_writable |= writable
        batch.writable |= writable
        batch.flush_required = True
        mm.tlb_flush_batched_pending += 1

    def folio_unmapped(self, batch: TlbUbc, folio) -> bool:
        """All PTEs of `folio` are cleared: fold its read-only part into the batch.
        Returns whether the folio may be freed with its flush deferred (can_luf)."""
        batch.cpumask |= batch.folio_ro
        batch.folio_ro = set()
        batch.folio_writable = False
        batch.folio_mms = set()
        return False

    def try_to_unmap_flush(self, task, batch: TlbUbc):
        """One full-flush IPI per CPU in the batch (arch_tlbbatch_flush())."""
        if batch.cpumask:
            yield from self.k.shootdown(task, sorted(batch.cpumask), NO_MM, 0, FULL, 0, False)
        batch.cpumask = set()
        batch.flush_required = batch.writable = False

    def flush_batch(self, task, batch: TlbUbc):
        """What reclaim and migration do before freeing: fold_unmap_luf() (LUF), then
        try_to_unmap_flush(). Returns the key freed deferred folios carry (0: none)."""
        yield from self.try_to_unmap_flush(task, batch)
        return 0

    def free_pending(self, folio, luf_key: int) -> bool:
        """Whether a freed folio still needs a flush before reuse (kept apart if so)."""
        return False

    def folio_not_freed(self, task, folio, luf_key: int):
        """A reclaim candidate that was unmapped but could not be freed."""
        return
        yield

    # -- page_alloc.c ---------------------------------------------------------------------
    def take_off(self, task, pfn: int):
        """A pending page leaves a pcp list: flush whatever it still needs."""
        return
        yield

    def zone_take_off(self, task, node: int, pfns):
        """Pending pages leave the buddy (rmqueue_bulk()): the zone's flush."""
        return
        yield

    def page_on_buddy(self, node: int, pfn: int) -> int:
        """A pending page moved from a pcp list to the buddy's pend_list; returns the
        generation it carries there (the zone's, patch 21)."""
        return 0

    def zone_flushed(self, node: int, zone_ugen: int) -> bool:
        """Whether the zone's flushes cover generation `zone_ugen` (the pend_list is
        clean again)."""
        return True

    # -- memory.c, filemap.c, mmap/mprotect/madvise, the NUMA scan -------------------------
    def flush_tlb_batched_pending(self, task, mm):
        """mm/rmap.c flush_tlb_batched_pending(), called by zap_pte_range() (munmap,
        madvise), change_pte_range() (mprotect, the NUMA scan)."""
        if mm.tlb_flush_batched_pending != mm.tlb_flush_batched_flushed:
            task.source = "batched_pending"
            yield from flush_tlb_mm(self.k, task, mm.id)
            mm.tlb_flush_batched_flushed = mm.tlb_flush_batched_pending
            self.count("flush_tlb_batched_pending")

    def tlb_end_vma(self, task, vma):
        """The end of a VMA's page-table walk (munmap, mprotect, madvise, NUMA scan)."""
        return
        yield

    def fault(self, task, vma, write: bool, end: bool):
        """A page fault in `vma` (handle_mm_fault()): before it, and at its end."""
        return
        yield

    def write_fault(self, task, mm, folio):
        """A fault is about to create a writable mapping of `folio` in `mm`."""
        return
        yield

    def file_write(self, task, file):
        """write_begin()/truncate/invalidate on a file."""
        return
        yield

    def finish_task_switch(self, task, mm):
        """A CPU switched from idle, which had borrowed `mm`, to a task (LUF only)."""
        return
        yield

    def luf_pending_mms(self) -> int:
        """Bit m set: mm m may still need a LUF flush (published for the CPUs' switch)."""
        return 0

    def luf_pending_pages(self) -> int:
        """Freed pages still carrying a LUF key (their flush may be pending); for plots."""
        return 0

    def count(self, key: str, n: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n
