"""mm/mmap.c and mm/vma.c: mmap (with MAP_FIXED and MAP_POPULATE) and munmap of a
range of pages within a mapping; the caller holds mmap_lock for write (mmap_lock.py)."""

from emu.errors import EmuError
from emu.mm import mmap_lock
from emu.mm.memory import populate
from emu.mm.mm_types import PROT_BITS
from emu.mm.mmu_gather import MmuGather, free_pgtables, zap_page_range


def content_of(k, vma, vpage: int) -> int:
    if vma.kind == "anon":
        return k.layout.anon_cid(vpage)
    return k.layout.file_cid(vma.file, vpage - vma.start)


def do_munmap(k, task, vma, first: int = 0, npages: int = 0, unlock: bool = False):
    """do_vmi_align_munmap() of `npages` pages (0: to the end) from page `first` of `vma`,
    mmap_lock held for write: write-lock and detach the VMA's range; with `unlock`
    (munmap(), not MAP_FIXED) downgrade mmap_lock to read and release it at the end.
    Then unmap_region(): zap through an mmu_gather, free the page tables nobody else
    uses, tlb_finish_mmu()."""
    npages = npages or vma.pages - first
    start = vma.start + first
    mm = k.mms[vma.mm]
    yield from mmap_lock.vma_start_write(k, task, mm.locks, vma)
    detached = [vp for vp in range(start, start + npages)
                if k.vma_of[vp] is vma and k.mapped[vp]]
    for vp in detached:                    # vms_gather_munmap_vmas(): faults now SIGSEGV
        k.mapped[vp] = 0
    if unlock:
        mmap_lock.downgrade(k, task, mm.locks)
    yield from k.policy.flush_tlb_batched_pending(task, mm)
    yield from k.policy.tlb_end_vma(task, vma)
    task.source = "munmap"
    tlb = MmuGather(k, task, vma.mm)
    yield from zap_page_range(k, tlb, start, npages)
    for vp in detached:
        k.set_vcid(vp, -1)
    free_pgtables(k, tlb, start, npages)
    yield from tlb.finish()
    if unlock:
        mmap_lock.up(k, task, mm.locks, False)


def do_mmap(k, task, vma, fixed: bool, first: int = 0, npages: int = 0):
    """Map `npages` pages (0: to the end) from page `first` of `vma`; with MAP_FIXED,
    whatever is mapped over that range is unmapped first."""
    npages = npages or vma.pages - first
    start, end = vma.start + first, vma.start + first + npages
    yield from mmap_lock.vma_start_write(k, task, k.mms[vma.mm].locks, vma)
    vp = start
    while vp < end:                        # runs of pages mapped by one mapping
        if not k.mapped[vp]:
            vp += 1
            continue
        other, run = k.vma_of[vp], vp
        if not fixed:
            raise EmuError(f"mmap of '{vma.name}' overlaps mapped '{other.name}' "
                           "(set fixed = true for MAP_FIXED)", "scenario")
        while vp < end and k.mapped[vp] and k.vma_of[vp] is other:
            vp += 1
        yield from do_munmap(k, task, other, run - other.start, vp - run)
    bits = PROT_BITS[vma.prot]
    for vp in range(start, end):
        k.vma_of[vp] = vma
        k.mapped[vp] = 1
        k.prot[vp] = bits
        k.set_vcid(vp, content_of(k, vma, vp))
    if vma.populate:
        yield from populate(k, task, start, npages)
