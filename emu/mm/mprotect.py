"""mm/mprotect.c: change_protection() of a range of pages within a mapping. Any change of
a present PTE's write or access bit is flushed: measured on this machine's kernel
(docs/real-kernel.md), RW->RO and RO->RW both send an IPI per call to a sibling running
the mm."""

from emu.mm import mmap_lock
from emu.mm.replica import make_pte, pte_pfn, pte_write
from emu.mm.tlb import flush_tlb_mm_range


def do_mprotect(k, task, vma, prot_bits: int, first: int = 0, npages: int = 0):
    npages = npages or vma.pages - first
    mm = k.mms[vma.mm]
    yield from mmap_lock.vma_start_write(k, task, mm.locks, vma)   # mmap_lock held for write
    yield from k.policy.flush_tlb_batched_pending(task, mm)
    yield from k.policy.tlb_end_vma(task, vma)
    write, access = bool(prot_bits & 2), bool(prot_bits & 1)
    lo = hi = -1
    for vp in range(vma.start + first, vma.start + first + npages):
        if k.vma_of[vp] is not vma or not k.mapped[vp]:
            continue
        k.prot[vp] = prot_bits
        pte = k.R.pte[vp]
        if pte < 0 or k.folios[pte_pfn(pte)].locked:
            continue
        pfn, was_w = pte_pfn(pte), pte_write(pte)
        new_w = write and (was_w or vma.kind == "anon")
        new = make_pte(pfn, new_w, access and bool(pte & 1))
        if new == pte:
            continue
        k.set_pte(vp, new)
        lo = vp if lo < 0 else lo
        hi = vp
        if new_w and not was_w:
            k.new_version(k.folios[pfn].cid, pfn)
    if lo >= 0:
        task.source = "mprotect"
        yield from flush_tlb_mm_range(k, task, vma.mm, lo, hi - lo + 1, False)
