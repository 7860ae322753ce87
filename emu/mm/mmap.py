"""mm/mmap.c and mm/vma.c: mmap (with MAP_FIXED and MAP_POPULATE) and munmap."""

from emu.errors import EmuError
from emu.mm.memory import populate, zap_page_range
from emu.mm.tlb import flush_tlb_mm_range

PAGES_PER_PTE_TABLE = 512


def content_of(k, vma, vpage: int) -> int:
    if vma.kind == "anon":
        return k.layout.anon_cid(vpage)
    return k.layout.file_cid(vma.file, vpage - vma.start)


def do_munmap(k, task, vma):
    """Zap the range, flush (freed_tables only when a whole page table goes), free."""
    mm = k.mms[vma.mm]
    yield from k.policy.flush_tlb_batched_pending(task, mm)
    yield from k.policy.tlb_end_vma(task, vma)
    to_free, lo, hi = zap_page_range(k, vma, vma.start, vma.pages)
    for vp in range(vma.start, vma.start + vma.pages):
        k.set_vcid(vp, -1)
    k.vma_mapped[id(vma)] = False
    freed_tables = vma.pages >= PAGES_PER_PTE_TABLE
    if lo >= 0 or freed_tables:
        task.source = "munmap"
        first = lo if lo >= 0 else vma.start
        yield from flush_tlb_mm_range(k, task, vma.mm, first, (hi - first + 1) if lo >= 0
                                      else vma.pages, freed_tables)
    for pfn in to_free:
        k.free_folio(pfn, task.cpu)


def do_mmap(k, task, vma, fixed: bool):
    """Map `vma`; with MAP_FIXED, whatever is mapped over its range is unmapped first."""
    for other in k.mms[vma.mm].vmas:
        if other is not vma and k.vma_mapped[id(other)] and \
                other.start < vma.start + vma.pages and vma.start < other.start + other.pages:
            if not fixed:
                raise EmuError(f"mmap of '{vma.name}' overlaps mapped '{other.name}' "
                               "(set fixed = true for MAP_FIXED)", "scenario")
            yield from do_munmap(k, task, other)
    if k.vma_mapped[id(vma)]:
        raise EmuError(f"mmap of '{vma.name}', which is already mapped", "scenario")
    k.vma_mapped[id(vma)] = True
    k.vma_prot[id(vma)] = vma.prot
    for vp in range(vma.start, vma.start + vma.pages):
        k.vma_of[vp] = vma
        k.set_vcid(vp, content_of(k, vma, vp))
    if vma.populate:
        yield from populate(k, task, vma)
