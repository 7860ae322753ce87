"""mm/madvise.c: MADV_DONTNEED zaps the range (anonymous pages are freed after the
flush; the next touch gets a new zero-filled page); MADV_PAGEOUT reclaims the range's
file pages now through the reclaim path (reclaim_pages(): batched flush, so LUF applies)."""

from emu.mm.memory import zap_page_range
from emu.mm.replica import pte_pfn
from emu.mm.tlb import flush_tlb_mm_range
from emu.mm.vmscan import reclaim_folio_list


def madvise_pageout(k, task, vma):
    """Isolate the file folios mapped only here and reclaim them (swap is off)."""
    pfns = []
    for vp in range(vma.start, vma.start + vma.pages):
        pte = k.R.pte[vp]
        if pte < 0:
            continue
        folio = k.folios[pte_pfn(pte)]
        if folio.anon or folio.locked or not folio.lru or len(folio.mapcount) > 1:
            continue
        k.lru_del(folio.pfn)
        pfns.append(folio.pfn)
    k.vmstat["pgsteal_direct"] += yield from reclaim_folio_list(k, task, pfns)


def madvise_dontneed(k, task, vma):
    mm = k.mms[vma.mm]
    yield from k.policy.flush_tlb_batched_pending(task, mm)
    yield from k.policy.tlb_end_vma(task, vma)
    to_free, lo, hi = zap_page_range(k, vma, vma.start, vma.pages)
    if lo >= 0:
        task.source = "madvise"
        yield from flush_tlb_mm_range(k, task, vma.mm, lo, hi - lo + 1, False)
    for pfn in to_free:
        k.free_folio(pfn, task.cpu)
