"""mm/page_alloc.c: per-node free lists, per-CPU page lists, watermarks.

Free pages live in a node's buddy list or on a CPU's pcp list (refilled and drained in
`pcp_batch` chunks). A shootdown policy may keep freed pages that still need a TLB flush
apart (LUF): each list has a clean and a pending half, and allocation prefers clean
pages. NR_FREE_PAGES counts buddy pages only, as in Linux.
"""

import math
from collections import deque

from emu.errors import EmuError


def zone_batchsize(managed: int) -> int:
    """pcp->batch as zone_batchsize() computes it."""
    batch = min(managed >> 10, (1 << 20) // 4096) // 4
    batch = max(batch, 1)
    return (1 << ((batch + batch // 2).bit_length() - 1)) - 1 or 1


def zone_highsize(low_wmark: int, batch: int, ncpus: int) -> int:
    """pcp->high as zone_highsize() computes it (high_fraction 0)."""
    return max(low_wmark // max(ncpus, 1), batch << 2)


def compute_watermarks(node_pages: list[int], min_free_kbytes: int, scale: int) -> list:
    """__setup_per_zone_wmarks(): [min, low, high] per node, in pages."""
    total = sum(node_pages)
    if min_free_kbytes <= 0:   # init_per_zone_wmark_min(): sqrt(16 * lowmem_kbytes)
        min_free_kbytes = min(max(int(math.isqrt(total * 4 * 16)), 128), 262144)
    pages_min = min_free_kbytes // 4
    marks = []
    for n in node_pages:
        if n == 0:
            marks.append([0, 0, 0])
            continue
        wmin = pages_min * n // total
        gap = max(wmin // 4, n * scale // 10000)
        marks.append([wmin, wmin + gap, wmin + 2 * gap])
    return marks


class FreeList:
    """Free frames of one node: the buddy lists and the per-CPU lists.

    A policy that defers flushes (LUF) keeps freed pages that still need one apart: on
    a pcp list they sit behind the clean pages (the patches add them at the tail, patch
    13), in the buddy they go on the zone's pend_list (patches 13 and 21)."""

    def __init__(self, node: int, pfns, ncpus: int, batch: int, high: int):
        self.node, self.batch, self.high = node, batch, high
        self.buddy = deque(pfns)       # free_list: clean pages
        self.buddy_pending = deque()   # pend_list: pages whose TLB flush is deferred
        self.pend_zone_ugen = 0        # free_area->pend_zone_ugen (patch 21)
        self.pcp = [deque() for _ in range(ncpus)]
        self.pcp_pending = [deque() for _ in range(ncpus)]

    def nr_free(self) -> int:
        return len(self.buddy) + len(self.buddy_pending)


class PageAllocator:
    """alloc_pages()/free_pages() over the nodes' free lists."""

    def __init__(self, layout, ncpus: int, kernel_cfg: dict):
        dram, cxl = layout.dram_pages, layout.nr_frames - layout.dram_pages
        sizes = [dram, cxl] if cxl else [dram]
        self.watermarks = compute_watermarks(sizes, kernel_cfg["min_free_kbytes"],
                                             kernel_cfg["watermark_scale_factor"])
        self.nodes = []
        start = 0
        for n, size in enumerate(sizes):
            batch = zone_batchsize(size)
            high = zone_highsize(self.watermarks[n][1], batch, ncpus)
            if self.watermarks[n][2] + ncpus * high >= size:
                raise EmuError(f"node {n} has {size} pages: too few for its watermarks "
                               f"(high {self.watermarks[n][2]}) and {ncpus} CPUs' page lists",
                               "machine")
            self.nodes.append(FreeList(n, range(start, start + size), ncpus, batch, high))
            start += size

    def free_pages(self, node: int) -> int:
        return self.nodes[node].nr_free()

    def watermark_ok(self, node: int, mark: int, nr: int = 1) -> bool:
        """zone_watermark_ok(): 0 min, 1 low, 2 high."""
        return self.nodes[node].nr_free() - nr >= self.watermarks[node][mark]

    def flush_pend_list_if_done(self, node: int, policy) -> None:
        """flush_pend_list_if_done() (patch 21): once the zone's flush covers everything on
        the pend_list, its pages are clean again."""
        fl = self.nodes[node]
        if fl.buddy_pending and policy.zone_flushed(node, fl.pend_zone_ugen):
            fl.buddy.extend(fl.buddy_pending)
            fl.buddy_pending.clear()

    def non_luf_pages_ok(self, node: int) -> bool:
        """non_luf_pages_ok() (patch 13): enough clean pages above the min watermark."""
        fl = self.nodes[node]
        return fl.nr_free() - len(fl.buddy_pending) > self.watermarks[node][0]

    def take(self, node: int, cpu: int, policy) -> tuple[int, bool, list]:
        """rmqueue(): a frame from `cpu`'s pcp list, clean ones first (pending ones sit at
        the tail). Returns (pfn, came pending from the pcp list, []), or, when the list is
        empty, (-1, False, refill): up to `batch` pages rmqueue_bulk() takes off the buddy,
        as (pfn, pending) pairs, pending pages first only when clean ones run short
        (get_page_from_free_area()). The caller flushes the refill's pending pages (the
        zone batch) before it puts the refill on the pcp list (refill_pcp())."""
        fl = self.nodes[node]
        pcp, pend = fl.pcp[cpu], fl.pcp_pending[cpu]
        if pcp:
            return pcp.popleft(), False, []
        if pend:
            return pend.popleft(), True, []
        self.flush_pend_list_if_done(node, policy)
        lists = (fl.buddy_pending, fl.buddy) if not self.non_luf_pages_ok(node) else \
            (fl.buddy, fl.buddy_pending)
        refill = []
        for _ in range(fl.batch):
            src = lists[0] if lists[0] else lists[1]
            if not src:
                break
            refill.append((src.popleft(), src is fl.buddy_pending))
        return -1, False, refill

    def refill_pcp(self, node: int, cpu: int, pfns) -> None:
        self.nodes[node].pcp[cpu].extend(pfns)

    def give(self, node: int, cpu: int, pfn: int, pending: bool, policy) -> None:
        """free_unref_page(): onto `cpu`'s pcp list; when it is over `high`, a batch drains
        from its tail to the buddy (free_pcppages_bulk()): pending pages first, each
        folding its flush into the zone's batch."""
        fl = self.nodes[node]
        (fl.pcp_pending if pending else fl.pcp)[cpu].append(pfn)
        if len(fl.pcp[cpu]) + len(fl.pcp_pending[cpu]) <= fl.high:
            return
        self.flush_pend_list_if_done(node, policy)
        left = fl.batch
        while left and fl.pcp_pending[cpu]:
            p = fl.pcp_pending[cpu].pop()
            fl.pend_zone_ugen = policy.page_on_buddy(node, p)
            fl.buddy_pending.append(p)
            left -= 1
        while left and fl.pcp[cpu]:
            fl.buddy.append(fl.pcp[cpu].popleft())
            left -= 1


WMARK_MIN, WMARK_LOW, WMARK_HIGH = 0, 1, 2
DIRECT_RECLAIM_RETRIES = 16


class OutOfMemory(RuntimeError):
    """No frame could be found even after direct reclaim (the simulated OOM)."""


def _take(k, task, node: int):
    pfn, pending, refill = k.alloc.take(node, task.cpu, k.policy)
    if refill:
        pulled = [p for p, was_pending in refill if was_pending]
        if pulled:                     # luf_takeoff_end(zone) at the end of rmqueue_bulk()
            yield from k.policy.zone_take_off(task, node, pulled)
        pfn = refill[0][0]
        k.alloc.refill_pcp(node, task.cpu, [p for p, _ in refill[1:]])
    elif pending:
        yield from k.policy.take_off(task, pfn)
    if pfn >= 0:
        k.vmstat["pgalloc"] += 1
    return pfn


def alloc_pages(k, task, preferred: int = 0, thisnode: bool = False):
    """__alloc_pages(): low-watermark fast path over the zonelist, waking kswapd where it
    fails, then the min watermark, then direct reclaim (allocstall)."""
    from emu.mm.vmscan import try_to_free_pages

    order = [preferred] if thisnode else \
        [preferred] + [n for n in range(k.nodes) if n != preferred]
    for n in order:
        if k.alloc.watermark_ok(n, WMARK_LOW):
            pfn = yield from _take(k, task, n)
            if pfn >= 0:
                return pfn
        k.wake_kswapd(n)
    for _ in range(DIRECT_RECLAIM_RETRIES):
        for n in order:
            if k.alloc.watermark_ok(n, WMARK_MIN):
                pfn = yield from _take(k, task, n)
                if pfn >= 0:
                    return pfn
        if thisnode:
            return -1                      # migration targets do not reclaim
        k.vmstat["allocstall"] += 1
        yield from try_to_free_pages(k, task, preferred)
    for n in order:                        # the reserves below min, as a last resort
        pfn = yield from _take(k, task, n)
        if pfn >= 0:
            return pfn
    raise OutOfMemory("simulated out of memory: no free frame after direct reclaim "
                      "(the scenario's working set does not fit; swap is off)")


KERNEL_CID = -3       # what a frame holds once the kernel (slab) owns it


def kernel_alloc(k, task, npages: int):
    """Pages for the kernel (slab, page tables): allocated, written, never freed here."""
    from emu.engine.process import Delay

    for _ in range(npages):
        pfn = yield from alloc_pages(k, task)
        k.set_frame_cid(pfn, KERNEL_CID)
        k.folios[pfn].cid = KERNEL_CID
        yield Delay(k.cost["migrate_copy_ns"])
