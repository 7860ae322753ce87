"""mm/madvise.c on a range of pages within a mapping: MADV_DONTNEED zaps it through an
mmu_gather (zap_page_range_single(): anonymous pages are freed after the flush; the next
touch gets a new zero-filled page); MADV_PAGEOUT reclaims the range's file pages now
through the reclaim path (reclaim_pages(): batched flush, so LUF applies)."""

from emu.mm.mmu_gather import MmuGather, zap_page_range
from emu.mm.replica import pte_pfn
from emu.mm.vmscan import reclaim_folio_list


def madvise_pageout(k, task, vma, first: int = 0, npages: int = 0):
    """Isolate the file folios mapped only here and reclaim them (swap is off, so
    anonymous and tmpfs folios stay)."""
    npages = npages or vma.pages - first
    pfns = []
    for vp in range(vma.start + first, vma.start + first + npages):
        pte = k.R.pte[vp]
        if pte < 0:
            continue
        folio = k.folios[pte_pfn(pte)]
        if k.swap_backed(folio) or folio.locked or not folio.lru or len(folio.mapcount) > 1:
            continue
        k.lru_del(folio.pfn)
        pfns.append(folio.pfn)
    k.vmstat["pgsteal_direct"] += yield from reclaim_folio_list(k, task, pfns)


def madvise_dontneed(k, task, vma, first: int = 0, npages: int = 0):
    npages = npages or vma.pages - first
    mm = k.mms[vma.mm]
    yield from k.policy.flush_tlb_batched_pending(task, mm)
    yield from k.policy.tlb_end_vma(task, vma)
    task.source = "madvise"
    tlb = MmuGather(k, task, vma.mm)
    yield from zap_page_range(k, tlb, vma.start + first, npages)
    yield from tlb.finish()
