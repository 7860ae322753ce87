"""mm/mmu_gather.c and the zap loop of mm/memory.c: how many flushes tearing down a
range costs.

Cleared PTEs extend the gather's range; every page goes into its batches (the frames are
freed only after the flush). The batches hold MMU_GATHER_BUNDLE pages on the stack plus
up to MAX_GATHER_BATCH_COUNT pages of MAX_GATHER_BATCH pointers (tlb_next_batch());
when they are full, zap_pte_range() flushes and frees them before going on. A dirty
file page delays its rmap removal (tlb_delay_rmap()), which forces a flush at the end
of its page table (zap_present_folio_ptes(): force_flush) and limits the batches to the
local one plus one more. free_pgtables() frees page tables no other mapping uses; the
final flush in tlb_finish_mmu() then carries freed_tables, and becomes a full flush when
another thread of the mm is batching PTE changes at the same time (mm_tlb_flush_nested()).

The zap takes time: `zap_pte_ns` per present PTE cleared, charged for each page table's
run before its flush, and `free_page_ns` per frame freed after a flush; both are from
munmap times measured on the real kernel (docs/real-kernel.md). Another thread's fault
or flush can thus come between two page tables of a long unmap, as on a real CPU.
"""

from emu.engine.process import Delay
from emu.mm.replica import pte_pfn, pte_write
from emu.mm.tlb import flush_tlb_mm_range
from emu.protocol import FULL

MMU_GATHER_BUNDLE = 8            # include/asm-generic/tlb.h
MAX_GATHER_BATCH = 510           # (PAGE_SIZE - sizeof(struct mmu_gather_batch)) / 8
MAX_GATHER_BATCH_COUNT = 10000 // MAX_GATHER_BATCH
PTRS_PER_PTE = 512


class MmuGather:
    """struct mmu_gather for one unmap of `mm` by `task` (tlb_gather_mmu())."""

    def __init__(self, k, task, mm: int):
        self.k, self.task, self.mm = k, task, mm
        self.lo = self.hi = -1             # range of cleared PTEs (tlb->start/end)
        self.freed_tables = False
        self.to_free: list[int] = []       # anonymous frames freed after the flush
        self.active = self.nr = self.batch_count = 0
        self.delayed_rmap = False
        k.mms[mm].tlb_flush_pending += 1   # inc_tlb_flush_pending()

    def remove_tlb_entry(self, vpage: int) -> None:
        self.lo = vpage if self.lo < 0 else min(self.lo, vpage)
        self.hi = max(self.hi, vpage)

    def remove_page(self, delay_rmap: bool) -> bool:
        """__tlb_remove_page(): True when the batches are full and must be flushed."""
        self.delayed_rmap |= delay_rmap
        self.nr += 1
        limit = MMU_GATHER_BUNDLE if self.active == 0 else MAX_GATHER_BATCH
        return self.nr == limit and not self._next_batch()

    def _next_batch(self) -> bool:
        if self.delayed_rmap and self.active != 0:
            return False
        if self.active == self.batch_count:
            if self.batch_count == MAX_GATHER_BATCH_COUNT:
                return False
            self.batch_count += 1          # one more page of pointers, kept until finish
        self.active += 1
        self.nr = 0
        return True

    def flush_tlbonly(self):
        """tlb_flush_mmu_tlbonly(): flush the gathered range, if any, and reset it."""
        if self.lo < 0 and not self.freed_tables:
            return
        first = self.lo if self.lo >= 0 else 0
        n = self.hi - self.lo + 1 if self.lo >= 0 else FULL
        yield from flush_tlb_mm_range(self.k, self.task, self.mm, first, n, self.freed_tables)
        self.lo = self.hi = -1
        self.freed_tables = False
        self.delayed_rmap = False          # tlb_flush_rmaps()

    def flush(self):
        """tlb_flush_mmu(): flush, then free the batched frames."""
        yield from self.flush_tlbonly()
        if self.to_free:
            yield Delay(len(self.to_free) * self.k.cost["free_page_ns"])
        for pfn in self.to_free:
            self.k.free_folio(pfn, self.task.cpu)
        self.to_free = []
        self.active = self.nr = 0

    def finish(self):
        """tlb_finish_mmu()."""
        mm = self.k.mms[self.mm]
        if mm.tlb_flush_pending > 1:       # mm_tlb_flush_nested(): flush everything
            self.lo = self.hi = -1
            self.freed_tables = True
        yield from self.flush()
        mm.tlb_flush_pending -= 1


def zap_page_range(k, tlb: MmuGather, first: int, npages: int):
    """unmap_page_range() down to zap_pte_range(), one page table at a time."""
    base = k.layout.mm_base[tlb.mm]
    vp, end = first, first + npages
    while vp < end:
        table_end = min(end, base + ((vp - base) // PTRS_PER_PTE + 1) * PTRS_PER_PTE)
        force = False
        zapped = 0
        while vp < table_end:
            pte = k.unmap_pte(vp)
            vp += 1
            if pte < 0:
                continue
            zapped += 1
            tlb.remove_tlb_entry(vp - 1)
            folio = k.folios[pte_pfn(pte)]
            dirty = not folio.anon and pte_write(pte)   # writable file PTE: written
            force |= dirty
            if folio.anon and not folio.mapcount:
                tlb.to_free.append(folio.pfn)
            if tlb.remove_page(dirty):
                force = True
                break
        if zapped:
            yield Delay(zapped * k.cost["zap_pte_ns"])
        if force:
            yield from tlb.flush()


def free_pgtables(k, tlb: MmuGather, first: int, npages: int) -> None:
    """Free the page tables of the range that exist and that no other mapped page uses."""
    base = k.layout.mm_base[tlb.mm]
    lo_t = (first - base) // PTRS_PER_PTE
    hi_t = (first + npages - 1 - base) // PTRS_PER_PTE
    for t in range(lo_t, hi_t + 1):
        key = (tlb.mm, t)
        if key not in k.pte_tables:
            continue
        t0 = base + t * PTRS_PER_PTE
        t1 = min(t0 + PTRS_PER_PTE, base + k.layout.mm_pages[tlb.mm])
        if any(k.mapped[v] for v in range(t0, t1) if not first <= v < first + npages):
            continue
        k.pte_tables.discard(key)
        tlb.freed_tables = True            # pte_free_tlb()
        tlb.remove_tlb_entry(max(t0, first))
        tlb.remove_tlb_entry(min(t1, first + npages) - 1)
