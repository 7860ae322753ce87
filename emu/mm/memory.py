"""mm/memory.c: page faults and zapping page ranges.

handle_mm_fault() dispatches on the PTE: a NUMA hint or migration entry, a write to a
read-only entry (do_wp_page / page_mkwrite), or no entry (anonymous page, page-cache
read with fault-around, write to a shared file page, copy-on-write of a private one).
"""

from emu.engine.process import Delay, Wait
from emu.errors import EmuError
from emu.mm import filemap, mmap_lock, numa_balancing
from emu.mm.page_alloc import alloc_pages
from emu.mm.replica import pte_pfn, pte_write
from emu.workload.patterns import WRITE


class SegFault(EmuError):
    """An access the kernel would answer with SIGSEGV."""


def writable(k, vpage: int) -> bool:
    """The page's mapping allows writes (its PROT bits, as mmap/mprotect set them)."""
    return bool(k.prot[vpage] & 2)


def do_user_addr_fault(k, task, vpage: int, access: int):
    """arch/x86/mm/fault.c: a thread's fault, under its VMA's lock, or mmap_lock for
    read when a writer holds the VMA (mmap_lock.py)."""
    vma = k.vma_of[vpage]
    locks = k.mms[vma.mm].locks
    mmap_held = yield from mmap_lock.lock_vma_or_mmap(k, task, locks, vma)
    try:
        yield from handle_mm_fault(k, task, vpage, access)
    except SegFault:
        mmap_lock.unlock_vma_or_mmap(k, task, locks, vma, mmap_held)
        raise
    mmap_lock.unlock_vma_or_mmap(k, task, locks, vma, mmap_held)


def handle_mm_fault(k, task, vpage: int, access: int):
    """The fault, between two calls of the policy's fault hook: LUF flushes at the end of
    handle_mm_fault() (patches 16, 19, 20); emu also flushes before the fault, because
    its oracle counts a page as changed from the moment a PTE for it is writable, which
    in the kernel is before the end of the fault (docs/luf.md)."""
    k.vmstat["pgfault"] += 1
    while vpage in k.faulting:                 # the PTE lock: one fault installs, the
        yield Wait(("fault", vpage))           # other then finds its PTE (pte_same())
    vma = k.vma_of[vpage]
    mm = k.mms[vma.mm]
    if not k.mapped[vpage] or not k.prot[vpage]:
        raise SegFault(f"a thread of '{mm.name}' touched '{vma.name}', which is not mapped "
                       "or PROT_NONE at that time (segmentation fault)", "scenario")
    write = access == WRITE
    if write and not writable(k, vpage):
        raise EmuError(f"a thread of '{k.mms[vma.mm].name}' wrote to read-only mapping "
                       f"'{vma.name}' (segmentation fault)", "scenario")
    k.faulting.add(vpage)
    yield from k.policy.fault(task, vma, write, False)
    yield from _do_fault(k, task, vma, vpage, write)
    yield from k.policy.fault(task, vma, write, True)
    k.faulting.discard(vpage)
    k.coord.runner.notify(("fault", vpage), task.t)


def _do_fault(k, task, vma, vpage: int, write: bool):
    """__handle_mm_fault(): dispatch on the PTE."""
    pte = k.R.pte[vpage]
    if pte >= 0 and not pte & 1:
        folio = k.folios[pte_pfn(pte)]
        if folio.locked:                       # migration entry: wait, then retry
            yield from filemap.folio_wait_locked(folio)
            return
        yield from numa_balancing.do_numa_page(k, task, vpage, pte)
        return
    if pte >= 0:
        if write and not pte_write(pte):
            yield from do_wp_page(k, task, vma, vpage, pte)
        return                                 # otherwise spurious: the replica caught up
    if vma.kind == "anon":
        yield from do_anonymous_page(k, task, vma, vpage)
    elif write and not vma.shared:
        yield from do_cow_fault(k, task, vma, vpage)
    else:
        yield from filemap.filemap_fault(k, task, vma, vpage, write)


def make_writable(k, task, vma, vpage: int, pfn: int):
    """A PTE becomes writable: the policy's write-fault hook first, then the content
    may change from now on (a new version for the oracle)."""
    mm = k.mms[vma.mm]
    yield from k.policy.write_fault(task, mm, k.folios[pfn])
    k.unmap_pte(vpage)
    k.map_page(vpage, pfn, True)
    k.young[vpage] = 1
    k.new_version(k.folios[pfn].cid, pfn)
    if not k.folios[pfn].anon:
        k.folios[pfn].dirty = True             # a shared file page: to be written back


def do_wp_page(k, task, vma, vpage: int, pte: int):
    if vma.kind != "anon" and not vma.shared:
        yield from do_cow_fault(k, task, vma, vpage)
        return
    yield from make_writable(k, task, vma, vpage, pte_pfn(pte))


def do_anonymous_page(k, task, vma, vpage: int):
    pfn = yield from alloc_pages(k, task)
    yield Delay(k.cost["migrate_copy_ns"])     # clear_page()
    cid = k.layout.anon_cid(vpage)
    k.new_version(cid)
    folio = k.folios[pfn]
    folio.cid, folio.anon, folio.file = cid, True, -1
    k.place_content(pfn, cid)
    can_write = writable(k, vpage)
    if can_write:
        yield from k.policy.write_fault(task, k.mms[vma.mm], folio)
    k.map_page(vpage, pfn, can_write)
    k.young[vpage] = 1
    k.lru_add(pfn)


def do_cow_fault(k, task, vma, vpage: int):
    """Write to a private file mapping: copy the file page into a new anonymous page.
    With no PTE yet (do_cow_fault()) the file page is only read, never mapped, so
    nothing is flushed; a read-only PTE being replaced (wp_page_copy()) is flushed."""
    if k.R.pte[vpage] < 0:
        yield from filemap.page_cache_read(k, task, vma.file, vpage - vma.start, task.tid)
    pfn = yield from alloc_pages(k, task)
    yield Delay(k.cost["migrate_copy_ns"])
    cid = k.layout.anon_cid(vpage)
    k.new_version(cid)
    folio = k.folios[pfn]
    folio.cid, folio.anon, folio.file = cid, True, -1
    k.place_content(pfn, cid)
    yield from k.policy.write_fault(task, k.mms[vma.mm], folio)
    had = k.unmap_pte(vpage)
    k.set_vcid(vpage, cid)
    k.map_page(vpage, pfn, True)
    k.young[vpage] = 1
    k.lru_add(pfn)
    if had >= 0:                               # the old read-only entry must go
        from emu.mm.tlb import flush_tlb_mm_range
        task.source = "cow"
        yield from flush_tlb_mm_range(k, task, vma.mm, vpage, 1, False)


def populate(k, task, start: int, npages: int):
    """MAP_POPULATE: fault every page in (reads; writes for writable anonymous memory)."""
    for vp in range(start, start + npages):
        if k.R.pte[vp] < 0:
            anon_rw = k.vma_of[vp].kind == "anon" and writable(k, vp)
            yield from handle_mm_fault(k, task, vp, WRITE if anon_rw else 0)

