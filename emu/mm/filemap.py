"""mm/filemap.c: the page cache, read faults with readahead and fault-around, write().

A page-cache miss is a major fault: the thread sleeps in I/O (its CPU may go idle) while
readahead brings in up to `readahead_pages` pages at the disk's latency and bandwidth.
A file in tmpfs has no disk: a miss allocates and clears that one page and nothing
after it (mm/shmem.c, shmem_get_folio_gfp() with SGP_CACHE). A read fault then maps up
to `fault_around_pages` neighbours already in the cache (shmem's map_pages is
filemap_map_pages() too), so in tmpfs only pages some task touched before.
"""

from emu.engine.process import Delay, Wait
from emu.mm.page_alloc import alloc_pages


def _index(vma, vpage: int) -> int:
    return vpage - vma.start


def folio_unlock(k, task, folio) -> None:
    """folio_unlock(): wake the tasks waiting for the lock (faults on the page, on its
    migration entry)."""
    folio.locked = False
    k.coord.runner.notify(("folio_lock", folio.pfn), task.t)


def folio_wait_locked(folio):
    """folio_wait_bit(PG_locked), as lock_folio() in filemap_fault() and
    migration_entry_wait_on_locked() do: the caller retries its lookup afterwards."""
    yield Wait(("folio_lock", folio.pfn))


def page_cache_read(k, task, file: int, index: int, tid: int = -1):
    """Bring `index` (and, from disk, readahead after it) into the page cache; return its
    frame. A cached folio that reclaim or migration holds locked is waited for, then
    looked up again: reclaim may have freed it (filemap_fault() retries when the folio's
    mapping went away)."""
    space = k.files[file]
    cid = k.layout.file_cid(file, index)
    while True:
        while cid in k.pages_under_io:         # someone else is reading it: wait
            yield Wait(("io", cid))
        pfn = space.pages.get(index)
        if pfn is None or not k.folios[pfn].locked:
            break
        yield from folio_wait_locked(k.folios[pfn])
    if pfn is not None:
        return pfn
    if space.shmem:
        end = index + 1
    else:
        k.vmstat["pgmajfault"] += 1
        if tid >= 0:
            k.coord.sleep_thread(task)
        end = min(k.layout.file_pages[file], index + k.cfg["readahead_pages"])
    batch = [i for i in range(index, end) if i not in space.pages
             and k.layout.file_cid(file, i) not in k.pages_under_io]
    cids = [k.layout.file_cid(file, i) for i in batch]
    for c in cids:
        k.pages_under_io[c] = True
    frames = []
    for i, c in zip(batch, cids, strict=True):
        pfn = yield from alloc_pages(k, task)
        frames.append((i, c, pfn))
    yield Delay(k.cost["migrate_copy_ns"] if space.shmem else   # clear_highpage()
                k.cost["disk_latency_ns"] + len(frames) * k.cost["disk_page_ns"])
    for i, c, pfn in frames:
        folio = k.folios[pfn]
        folio.cid, folio.anon, folio.file, folio.index = c, False, file, i
        k.place_content(pfn, c)
        space.pages[i] = pfn
        k.lru_add(pfn)
        del k.pages_under_io[c]
        k.coord.runner.notify(("io", c), task.t)
    return space.pages[index]


def filemap_fault(k, task, vma, vpage: int, write: bool):
    pfn = yield from page_cache_read(k, task, vma.file, _index(vma, vpage), task.tid)
    folio = k.folios[pfn]
    folio.exec |= vma.kind == "code"
    if write:                                   # do_shared_fault(): page_mkwrite
        yield from k.policy.write_fault(task, k.mms[vma.mm], folio)
        k.map_page(vpage, pfn, True)
        k.new_version(folio.cid, pfn)
        folio.dirty = True                      # fault_dirty_shared_page()
    else:
        k.map_page(vpage, pfn, False)
        do_fault_around(k, vma, vpage)
    k.young[vpage] = 1


def do_fault_around(k, vma, vpage: int) -> None:
    """Map the cached neighbours in the aligned fault-around window, read-only."""
    n = k.cfg["fault_around_pages"]
    if n <= 1:
        return
    space = k.files[vma.file]
    base = vma.start + (_index(vma, vpage) // n) * n
    for vp in range(max(base, vma.start), min(base + n, vma.start + vma.pages)):
        if vp == vpage or k.R.pte[vp] >= 0 or vp in k.faulting:   # theirs to map
            continue
        pfn = space.pages.get(_index(vma, vp))
        if pfn is not None and not k.folios[pfn].locked:
            k.folios[pfn].exec |= vma.kind == "code"
            k.map_page(vp, pfn, False)


def generic_perform_write(k, task, file: int, offset: int, npages: int):
    """write(): each page is found or read into the cache, then its content changes."""
    yield from k.policy.file_write(task, k.files[file])
    last = min(k.layout.file_pages[file], offset + (npages or k.layout.file_pages[file]))
    for index in range(offset, last):
        pfn = yield from page_cache_read(k, task, file, index)
        yield Delay(k.cost["migrate_copy_ns"])
        k.new_version(k.folios[pfn].cid, pfn)
        k.folios[pfn].dirty = True


def truncate_pagecache(k, task, file: int, offset: int, npages: int):
    """truncate: unmap the range from every mm (zap + flush), drop it from the cache;
    the file's content there is gone (reads now see a new, zeroed version)."""
    from emu.mm.tlb import flush_tlb_mm_range

    yield from k.policy.file_write(task, k.files[file])
    space = k.files[file]
    last = min(k.layout.file_pages[file], offset + (npages or k.layout.file_pages[file]))
    per_mm: dict[int, list[int]] = {}
    dropped = []
    for index in range(offset, last):
        pfn = space.pages.get(index)
        if pfn is None:
            continue
        for vp in list(k.folios[pfn].mapcount):
            per_mm.setdefault(k.mm_of[vp], []).append(vp)
            k.unmap_pte(vp)
        dropped.append(pfn)
    task.source = "truncate"
    for mm, vps in sorted(per_mm.items()):
        yield from flush_tlb_mm_range(k, task, mm, min(vps), max(vps) - min(vps) + 1, False)
    for index in range(offset, last):
        k.new_version(k.layout.file_cid(file, index), -1)
    for pfn in dropped:
        k.free_folio(pfn, task.cpu)

