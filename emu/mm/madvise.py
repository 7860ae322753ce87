"""mm/madvise.c: MADV_DONTNEED zaps the range (anonymous pages are freed after the
flush; the next touch gets a new zero-filled page)."""

from emu.mm.memory import zap_page_range
from emu.mm.tlb import flush_tlb_mm_range


def madvise_dontneed(k, task, vma):
    mm = k.mms[vma.mm]
    yield from k.policy.flush_tlb_batched_pending(task, mm)
    yield from k.policy.mm_change(task, mm)
    to_free, lo, hi = zap_page_range(k, vma, vma.start, vma.pages)
    if lo >= 0:
        task.source = "madvise"
        yield from flush_tlb_mm_range(k, task, vma.mm, lo, hi - lo + 1, False)
    for pfn in to_free:
        k.free_folio(pfn, task.cpu)
