"""mm/migrate.c: migrate_pages_batch().

Up to `migrate_batch` folios are unmapped together (migration entries, flushes batched),
one try_to_unmap_flush() covers them all (a policy may defer the read-only ones: LUF),
then each is copied, its PTEs point at the new frame, and the old frame is freed.
Faults on a migration entry wait for the copy.
"""

from emu.engine.process import Delay
from emu.mm.filemap import folio_unlock
from emu.mm.page_alloc import alloc_pages
from emu.mm.rmap import try_to_unmap
from emu.policy.base import TlbUbc


def migrate_pages_batch(k, task, pfns: list[int], target: int, counter: str | None):
    """Move `pfns` to node `target`; returns (number moved, list of pfns that failed)."""
    failed, done = [], 0
    limit = k.cfg["migrate_batch"]
    for i in range(0, len(pfns), limit):
        chunk = pfns[i:i + limit]
        moving = []
        batch = TlbUbc()
        for src in chunk:
            folio = k.folios[src]
            if folio.locked or folio.cid < 0 or folio.writeback_until > task.t:
                failed.append(src)
                continue
            dst = yield from alloc_pages(k, task, target, thisnode=True)
            if dst < 0:
                failed.append(src)
                k.vmstat["pgmigrate_fail"] += 1
                continue
            folio.locked = True
            mappings, can_luf = yield from try_to_unmap(k, task, batch, src, migration=True)
            moving.append((src, dst, mappings, can_luf))
        luf_key = yield from k.policy.flush_batch(task, batch)
        yield Delay(len(moving) * k.cost["migrate_copy_ns"])
        for src, dst, mappings, can_luf in moving:
            move_folio(k, task, src, dst, mappings, luf_key if can_luf else 0)
            done += 1
        k.vmstat["pgmigrate_success"] += len(moving)
        if counter:
            k.vmstat[counter] += len(moving)
    return done, failed


def move_folio(k, task, src: int, dst: int, mappings, luf_key: int = 0) -> None:
    """Copy the folio's state to `dst`, remove the migration entries, free `src` (with
    the deferred flush it still needs: migrate_folio_done(), LUF patch 23)."""
    old, new = k.folios[src], k.folios[dst]
    new.cid, new.anon, new.file, new.index = old.cid, old.anon, old.file, old.index
    new.exec, new.referenced, new.dirty = old.exec, old.referenced, old.dirty
    k.place_content(dst, old.cid)
    if old.file >= 0:
        k.files[old.file].pages[old.index] = dst
        old.file = -1                          # the cache now points at dst
    active = old.lru == "active"
    k.lru_del(src)
    k.lru_add(dst, active=active)
    for vp, writable in mappings:
        k.map_page(vp, dst, writable)          # replaces the migration entry
    k.free_folio(src, task.cpu, luf_key)
    folio_unlock(k, task, old)
