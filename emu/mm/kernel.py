"""The coordinator's kernel state: what Linux keeps globally, and small helpers on it.

Page tables (in the master replica), mm_structs, the page cache, per-frame folio state,
LRU lists, the page allocator, vmstat counters and the shootdown policy. The system
calls, fault handling, reclaim and migration that act on it live in the modules named
after their kernel files.
"""

from collections import OrderedDict

from emu.mm.mm_types import AddressSpace, Folio, MmStruct
from emu.mm.page_alloc import PageAllocator
from emu.mm.replica import (
    FRAME,
    FRAME_GEN,
    GEN_BITS,
    LATEST,
    MM_GEN,
    MM_GEN_AT,
    PTE,
    VCID,
    MasterReplica,
    frame_cid,
    frame_ver,
    make_pte,
    pack_frame,
    pte_pfn,
)
from emu.mm.tlb import Shootdown, mm_cpumask

VMSTAT = ("pgfault", "pgmajfault", "pgalloc", "pgfree", "allocstall", "pgscan_kswapd",
          "pgscan_direct", "pgsteal_kswapd", "pgsteal_direct", "pgdemote_kswapd",
          "pgdemote_direct", "pgpromote_success", "pgmigrate_success", "pgmigrate_fail",
          "numa_hint_faults", "numa_pte_updates", "pgactivate", "pgdeactivate",
          "kswapd_wakeups", "nr_vmscan_write")

# Where shootdowns come from, for the report's breakdown
SOURCES = ("munmap", "madvise", "mprotect", "mmap", "cow", "truncate", "reclaim", "demotion",
           "promotion", "numa_scan", "migrate", "luf_takeoff", "luf_hook",
           "luf_switch", "batched_pending", "ideal", "other")


class Kernel:
    """Global memory-management state owned by the coordinator."""

    def __init__(self, sc: dict, layout, ncpus: int, coordinator):
        self.sc, self.layout, self.ncpus, self.coord = sc, layout, ncpus, coordinator
        self.cfg, self.cost = sc["kernel"], sc["cost"]
        self.flush_ceiling = self.cost["tlb_single_page_flush_ceiling"]
        self.R = MasterReplica(layout, len(layout.mm_names))
        self.mms = [MmStruct(m, name, [v for v in layout.vmas if v.mm == m])
                    for m, name in enumerate(layout.mm_names)]
        self.files = [AddressSpace(i, f["name"], shmem=f["tmpfs"])
                      for i, f in enumerate(sc["file"])]
        self.folios = [Folio(pfn) for pfn in range(layout.nr_frames)]
        self.alloc = PageAllocator(layout, ncpus, self.cfg)
        self.nodes = len(self.alloc.nodes)
        # per node: LRU lists, OrderedDict used as an ordered set (oldest first)
        self.lru = [{(kind, t): OrderedDict() for kind in ("active", "inactive")
                     for t in ("file", "anon")} for _ in range(self.nodes)]
        self.young = bytearray(layout.nr_vpages)       # PTE accessed bits (reported)
        self.vma_of = [None] * layout.nr_vpages
        self.mm_of = [0] * layout.nr_vpages
        for v in layout.vmas:
            for vp in range(v.start, v.start + v.pages):
                if v.mapped or self.vma_of[vp] is None:
                    self.vma_of[vp] = v
                self.mm_of[vp] = v.mm
        self.mapped = bytearray(layout.nr_vpages)   # 1 where vma_of[vp] is mapped now
        self.prot = bytearray(layout.nr_vpages)     # its PROT bits (mm_types.PROT_BITS)
        self.pte_tables: set[tuple[int, int]] = set()   # (mm, index) of allocated PTE tables
        self.vmstat = dict.fromkeys(VMSTAT, 0)
        # folios unmapped by batched reclaim/migration: all PTEs read-only, or not
        self.unmap_ro_rw = {"ro": 0, "rw": 0}
        self.shootdown_sources = dict.fromkeys(SOURCES, 0)   # flush requests with IPIs
        self.ipis_by_source = dict.fromkeys(SOURCES, 0)
        self.policy = None
        self.kswapd_awake = [False] * self.nodes
        self.pages_under_io = {}       # cid -> True while its read is in flight
        self.faulting: set[int] = set()   # vpages with a fault in progress (their PTE lock)
        self.numa_rate_window, self.numa_rate_pages = -1, 0
        self._pub = self._pub_rows = None   # the window's published state, read as lists
        self._masks: dict[tuple[int, int], tuple[int, ...]] = {}

    # -- mm_cpumask and tlb_gen ------------------------------------------------------------
    def cpumask(self, mm: int) -> tuple[int, ...]:
        """mm_cpumask(mm) at the current task's time, from what the CPUs published.

        The published state is fixed for a window (a new array each window), so its rows
        are read once per window and each (mm, time) answered once: reclaim asks for
        every PTE it clears. What the coordinator told CPUs since is part of the key."""
        pub = self.coord.engine.pub
        if pub is not self._pub:
            self._pub, self._pub_rows, self._masks = pub, pub[:self.ncpus].tolist(), {}
        key = (mm, self.coord.now, self.coord.told_version)
        mask = self._masks.get(key)
        if mask is None:
            mask = self._masks[key] = mm_cpumask(self._pub_rows, mm, self.coord.now,
                                                 self.coord.told)
        return mask

    def inc_mm_tlb_gen(self, mm: int) -> int:
        gen = self.R.mm_gen[mm] + 1
        self.R.set(MM_GEN, mm, gen)
        self.R.set(MM_GEN_AT, mm, self.coord.now << GEN_BITS | gen & (1 << GEN_BITS) - 1)
        return gen

    def shootdown(self, task, cpumask, mm, start, npages, new_gen, freed, trim=False):
        """Flush the given CPUs (None: mm_cpumask) from `task`'s CPU and wait for acks
        (`trim`: also those left in the mask running another mm, tlb.py)."""
        mask = self.cpumask(mm) if cpumask is None else cpumask
        if not any(c != task.cpu for c in mask):
            if task.cpu in mask:      # only the initiator: a local flush, no IPI, no wait
                self.coord.local_flush(task, mm, start, npages, new_gen)
            return
        self.shootdown_sources[task.source or "other"] += 1
        yield Shootdown(mask, mm, start, npages, new_gen, freed, trim)

    # -- page tables, reverse map, contents ------------------------------------------------
    def set_pte(self, vpage: int, pte: int) -> None:
        self.R.set(PTE, vpage, pte)

    def map_page(self, vpage: int, pfn: int, writable: bool) -> None:
        mm = self.mm_of[vpage]
        self.pte_tables.add((mm, (vpage - self.layout.mm_base[mm]) >> 9))   # pte_alloc()
        self.set_pte(vpage, make_pte(pfn, writable))
        self.folios[pfn].mapcount.append(vpage)

    def unmap_pte(self, vpage: int) -> int:
        """Clear one PTE; returns the old PTE value (-1 if there was none)."""
        pte = self.R.pte[vpage]
        if pte >= 0:
            self.set_pte(vpage, -1)
            self.folios[pte_pfn(pte)].mapcount.remove(vpage)
            self.young[vpage] = 0
        return pte

    def set_vcid(self, vpage: int, cid: int) -> None:
        self.R.set(VCID, vpage, cid)

    def place_content(self, pfn: int, cid: int) -> None:
        """The frame now holds the newest version of content `cid`."""
        self.R.set(FRAME, pfn, pack_frame(cid, self.R.latest[cid]))

    def set_frame_cid(self, pfn: int, cid: int) -> None:
        """The frame now holds `cid` (-1: none, or the kernel's), at the version it has."""
        self.R.set(FRAME, pfn, pack_frame(cid, frame_ver(self.R.frame[pfn])))

    def new_version(self, cid: int, pfn: int = -1) -> None:
        """Content `cid` changes (written, or replaced); the frame holding it follows."""
        self.R.set(LATEST, cid, self.R.latest[cid] + 1)
        if pfn >= 0:
            self.R.set(FRAME, pfn, pack_frame(frame_cid(self.R.frame[pfn]), self.R.latest[cid]))

    # -- LRU ------------------------------------------------------------------------------
    def swap_backed(self, folio) -> bool:
        """folio_test_swapbacked(): anonymous or tmpfs. Such folios live on the anon LRU
        lists and, with swap off, reclaim cannot free them (folio_is_file_lru())."""
        return folio.anon or (folio.file >= 0 and self.files[folio.file].shmem)

    def _lru_kind(self, folio) -> str:
        return "anon" if self.swap_backed(folio) else "file"

    def lru_add(self, pfn: int, active: bool = False) -> None:
        f = self.folios[pfn]
        f.lru = "active" if active else "inactive"
        self.lru[self.layout.node_of(pfn)][(f.lru, self._lru_kind(f))][pfn] = None

    def lru_del(self, pfn: int) -> None:
        f = self.folios[pfn]
        if f.lru:
            del self.lru[self.layout.node_of(pfn)][(f.lru, self._lru_kind(f))][pfn]
            f.lru = ""

    # -- frames ---------------------------------------------------------------------------
    def free_folio(self, pfn: int, cpu: int, luf_key: int = 0) -> None:
        """Return a frame to the allocator; its content stays until it is reused.
        `luf_key`: the deferred flush the frame still needs (free_unref_folios(), LUF)."""
        f = self.folios[pfn]
        self.lru_del(pfn)
        if f.file >= 0:
            self.files[f.file].pages.pop(f.index, None)
        f.referenced = f.exec = f.dirty = False
        f.writeback_until = 0
        f.mapcount = []
        f.numa_scan_ns = -1
        self.R.set(FRAME_GEN, pfn, self.R.frame_gen[pfn] + 1)
        if self.cfg["init_on_free"] or self.cfg["kasan"]:   # zeroed or poisoned on free
            self.set_frame_cid(pfn, -1)
        pending = self.policy.free_pending(f, luf_key)
        self.alloc.give(self.layout.node_of(pfn), cpu, pfn, pending, self.policy)
        self.vmstat["pgfree"] += 1

    def wake_kswapd(self, node: int) -> None:
        if not self.kswapd_awake[node]:
            self.kswapd_awake[node] = True
            self.vmstat["kswapd_wakeups"] += 1
            self.coord.runner.notify(("kswapd", node), self.coord.now)
