"""kernel/sched/fair.c task_numa_work() and mm/memory.c do_numa_page(), tiering mode.

Every scan period, under mmap_lock for read if it is free (else that period's scan is
skipped, as mmap_read_trylock() makes it), a process's next `numa_scan_size_pages` are
made PROT_NONE (change_prot_numa(): an mprotect-like change that costs a flush, with
flush_tlb_batched_pending() and tlb_end_vma() per VMA like mprotect), skipping pages on
the top tier (DRAM) as NUMA_BALANCING_MEMORY_TIERING does. The next access is a hint fault;
a CXL page touched within the hot threshold of its scan is promoted to DRAM if the
promotion rate limit allows and DRAM has room above its high watermark; otherwise kswapd
is woken on DRAM to make room.
"""

from emu.engine.process import Delay
from emu.mm import mmap_lock
from emu.mm.page_alloc import WMARK_HIGH
from emu.mm.replica import make_pte, pte_pfn, pte_write
from emu.mm.tlb import flush_tlb_mm_range

RATE_WINDOW_NS = 1_000_000_000


def task_numa_work(k, task, mm):
    period, size = k.cfg["numa_scan_period_ns"], k.cfg["numa_scan_size_pages"]
    base, total = k.layout.mm_base[mm.id], k.layout.mm_pages[mm.id]
    while k.coord.mm_live[mm.id]:
        yield Delay(period)
        if not mmap_lock.try_down(mm.locks, False):                # mmap_read_trylock()
            continue
        yield from k.policy.flush_tlb_batched_pending(task, mm)    # change_pte_range()
        lo = hi = -1
        vmas = {}
        for i in range(min(size, total)):
            vp = base + (mm.numa_scan_offset + i) % total
            vma = k.vma_of[vp]
            if vma is not None and k.mapped[vp]:
                vmas[id(vma)] = vma
            pte = k.R.pte[vp]
            if pte < 0 or not pte & 1 or k.layout.node_of(pte_pfn(pte)) == 0:
                continue
            folio = k.folios[pte_pfn(pte)]
            if folio.locked:
                continue
            k.set_pte(vp, make_pte(pte_pfn(pte), pte_write(pte), False))
            folio.numa_scan_ns = task.t
            k.vmstat["numa_pte_updates"] += 1
            lo = vp if lo < 0 or vp < lo else lo
            hi = max(hi, vp)
        mm.numa_scan_offset = (mm.numa_scan_offset + size) % total
        for vma in vmas.values():             # change_protection_range(): tlb_end_vma()
            yield from k.policy.tlb_end_vma(task, vma)
        if lo >= 0:
            task.source = "numa_scan"
            yield from flush_tlb_mm_range(k, task, mm.id, lo, hi - lo + 1, False)
        mmap_lock.up(k, task, mm.locks, False)


def promotion_allowed(k, t: int) -> bool:
    """numa_promotion_rate_limit(): at most the limit's pages per one-second window."""
    window = t // RATE_WINDOW_NS
    if window != k.numa_rate_window:
        k.numa_rate_window, k.numa_rate_pages = window, 0
    limit_pages = k.cfg["numa_promote_rate_limit_mbps"] * 256
    return k.numa_rate_pages < limit_pages


def do_numa_page(k, task, vpage: int, pte: int):
    from emu.mm.migrate import migrate_pages_batch

    k.vmstat["numa_hint_faults"] += 1
    pfn = pte_pfn(pte)
    folio = k.folios[pfn]
    hot = folio.numa_scan_ns >= 0 and task.t - folio.numa_scan_ns < k.cfg["numa_hot_threshold_ns"]
    if k.layout.node_of(pfn) == 1 and hot and promotion_allowed(k, task.t):
        if k.alloc.watermark_ok(0, WMARK_HIGH, 1):
            task.source = "promotion"
            done, _ = yield from migrate_pages_batch(k, task, [pfn], 0, "pgpromote_success")
            k.numa_rate_pages += done
            if done:
                return
        else:
            k.wake_kswapd(0)
    if k.R.pte[vpage] == pte:                  # restore the access (no flush needed)
        k.set_pte(vpage, make_pte(pfn, pte_write(pte), True))
    folio.numa_scan_ns = -1
