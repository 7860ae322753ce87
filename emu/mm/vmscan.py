"""mm/vmscan.c: LRU aging, shrink_folio_list(), kswapd and direct reclaim.

Reclaim isolates up to SWAP_CLUSTER_MAX folios from the tail of the inactive lists.
A folio whose PTEs were referenced is activated (or given a second chance once); an
unreferenced one is demoted to the CXL node when demotion is on, or locked, unmapped with
the flush batched and freed PAGEVEC_SIZE at a time, each batch after a
try_to_unmap_flush(); a dirty one is written back and kept (pageout()).
With swap off, anonymous folios can only be demoted. kswapd reclaims from the low to the high watermark.
"""

from itertools import islice

from emu.engine.process import Delay, Wait
from emu.mm.filemap import folio_unlock
from emu.mm.page_alloc import WMARK_HIGH
from emu.policy.base import TlbUbc

SCAN_COST_NS = 100      # assumed per-folio cost of the reclaim scan (rmap walk, checks)
PAGEVEC_SIZE = 31       # include/linux/pagevec.h: a folio_batch (free_folios) holds 31


def can_demote(k, node: int) -> bool:
    return k.cfg["demotion"] and node == 0 and k.nodes > 1


def folio_referenced(k, folio) -> int:
    """Count and clear the accessed bits of the folio's PTEs (no flush on x86)."""
    n = 0
    for vp in folio.mapcount:
        if k.young[vp]:
            n += 1
            k.young[vp] = 0
    return n


def shrink_active_list(k, node: int, kind: str, nr: int) -> None:
    """Deactivate the oldest active folios; referenced executable ones stay active."""
    active = k.lru[node][("active", kind)]
    for pfn in list(islice(active, nr)):
        folio = k.folios[pfn]
        if folio_referenced(k, folio) and folio.exec:
            active.move_to_end(pfn)
            continue
        k.lru_del(pfn)
        folio.referenced = False
        k.lru_add(pfn)
        k.vmstat["pgdeactivate"] += 1


def inactive_is_low(k, node: int, kind: str) -> bool:
    lists = k.lru[node]
    return len(lists[("inactive", kind)]) < len(lists[("active", kind)])


def isolate(k, node: int, nr: int) -> list[int]:
    kinds = ["file"]
    if k.cfg["swap"] or can_demote(k, node):
        kinds.append("anon")
    for kind in kinds:
        if inactive_is_low(k, node, kind):
            shrink_active_list(k, node, kind, nr)
    out = []
    for kind in kinds:
        lst = k.lru[node][("inactive", kind)]
        for pfn in list(islice(lst, nr - len(out))):
            if not k.folios[pfn].locked:
                k.lru_del(pfn)                 # isolated: off the LRU while we work
                out.append(pfn)
        if len(out) >= nr:
            break
    return out


def shrink_node(k, task, node: int, kswapd: bool):
    """One shrink_inactive_list() round; returns the number of folios reclaimed."""
    from emu.mm.migrate import migrate_pages_batch

    scan, steal = ("pgscan_kswapd", "pgsteal_kswapd") if kswapd else \
        ("pgscan_direct", "pgsteal_direct")
    isolated = isolate(k, node, k.cfg["swap_cluster_max"])
    k.vmstat[scan] += len(isolated)
    to_free, demote = [], []
    for pfn in isolated:
        folio = k.folios[pfn]
        if folio_referenced(k, folio):
            if folio.referenced or folio.exec or folio.anon:
                k.lru_add(pfn, active=True)
                k.vmstat["pgactivate"] += 1
            else:
                folio.referenced = True        # second chance: rotate
                k.lru_add(pfn)
            continue
        if can_demote(k, node):
            demote.append(pfn)
            continue
        if k.swap_backed(folio) and not k.cfg["swap"]:
            k.lru_add(pfn, active=True)
            continue
        to_free.append(pfn)
    reclaimed = 0
    if demote:
        task.source = "demotion"
        done, failed = yield from migrate_pages_batch(k, task, demote, 1,
                                                      "pgdemote_kswapd" if kswapd
                                                      else "pgdemote_direct")
        reclaimed += done
        for pfn in failed:                     # demotion target full: reclaim instead
            if k.swap_backed(k.folios[pfn]):
                k.lru_add(pfn, active=True)
            else:
                to_free.append(pfn)
    reclaimed += yield from reclaim_folio_list(k, task, to_free)
    k.vmstat[steal] += reclaimed
    yield Delay(SCAN_COST_NS * max(1, len(isolated)))
    return reclaimed


def reclaim_folio_list(k, task, pfns: list[int]):
    """The unmap-and-free part of shrink_folio_list(): a folio under writeback is kept as
    it is; the others are locked (faults on them wait) and unmapped with their flush
    batched; each time a batch of PAGEVEC_SIZE folios to free fills, and once at the end,
    flush (fold_unmap_luf() first for LUF: patch 24) and free the batch. A dirty folio is
    written back and kept instead (for LUF, its deferred flush is done now)."""
    from emu.mm.rmap import try_to_unmap

    batch = TlbUbc()
    free, free_luf = [], []
    freed = 0
    for pfn in pfns:
        folio = k.folios[pfn]
        if folio.writeback_until > task.t:      # folio_test_writeback(): keep
            k.lru_add(pfn)
            continue
        folio.locked = True                     # folio_trylock(), held to free or keep
        task.source = "reclaim"
        _, can_luf = yield from try_to_unmap(k, task, batch, pfn)
        target = free_luf if can_luf else free
        target.append(pfn)
        if len(target) == PAGEVEC_SIZE:
            freed += yield from _flush_and_free(k, task, batch, free, free_luf)
            free, free_luf = [], []
    freed += yield from _flush_and_free(k, task, batch, free, free_luf)
    return freed


def _flush_and_free(k, task, batch, free: list[int], free_luf: list[int]):
    """try_to_unmap_flush(), then free_unref_folios() of both batches; a dirty folio is
    kept (pageout()) and unlocked with the others."""
    task.source = "reclaim"
    luf_key = yield from k.policy.flush_batch(task, batch)
    freed = 0
    for pfns, key in ((free, 0), (free_luf, luf_key)):
        for pfn in pfns:
            folio = k.folios[pfn]
            if folio.dirty:
                yield from k.policy.folio_not_freed(task, folio, key)
                pageout(k, task, folio)
                k.lru_add(pfn)
            else:
                k.free_folio(pfn, task.cpu, key)
                freed += 1
            folio_unlock(k, task, folio)
    return freed


def pageout(k, task, folio) -> None:
    """pageout(): start writing the folio back; it is clean once the write is issued
    and under writeback until the disk has it (one page at the disk's latency and
    bandwidth; writes are not queued behind each other)."""
    folio.dirty = False
    folio.writeback_until = task.t + k.cost["disk_latency_ns"] + k.cost["disk_page_ns"]
    k.vmstat["nr_vmscan_write"] += 1


def kswapd(k, task, node: int):
    """balance_pgdat(): sleep until woken, then reclaim until the high watermark."""
    while True:
        yield Wait(("kswapd", node))
        stalls = 0
        while not k.alloc.watermark_ok(node, WMARK_HIGH) and stalls < 4:
            got = yield from shrink_node(k, task, node, kswapd=True)
            stalls = 0 if got else stalls + 1
        k.kswapd_awake[node] = False


def try_to_free_pages(k, task, node: int):
    """Direct reclaim in the allocating task's context (its CPU sends the IPIs)."""
    for n in [node] + [x for x in range(k.nodes) if x != node]:
        got = yield from shrink_node(k, task, n, kswapd=False)
        if got:
            return got
    return 0
