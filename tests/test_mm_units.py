"""Memory-management logic without MPI: LRU aging and migration batching, driven on a
Kernel whose coordinator is a plain stand-in (no CPU has run, so no IPI is due)."""

import numpy as np

from emu.engine.process import Delay, ProcessRunner
from emu.mm import filemap, migrate, numa_balancing, vmscan
from emu.mm.kernel import Kernel
from emu.mm.layout import build_layout
from emu.mm.replica import frame_cid, make_pte
from emu.policy.vanilla import VanillaPolicy
from emu.protocol import PUB_SLOTS
from emu.scenario.load import load_scenario


class StandInCoordinator:
    """What Kernel reads of its coordinator: published CPU state, a runner, send()."""

    def __init__(self, ncpus):
        self.engine = type("E", (), {"pub": np.zeros((ncpus + 1, PUB_SLOTS), np.int64),
                                     "epoch": 1})()
        self.runner = ProcessRunner(lambda proc, req: None)
        self.now = 0
        self.told = {}
        self.told_version = 0
        self.sent = []

    def send(self, *event):
        self.sent.append(event)

    def local_flush(self, *args):
        self.sent.append(("local_flush", *args))


class Task:
    cpu, t, tid, kthread, source = 0, 0, -1, True, None


def drive(gen):
    """Run a kernel generator to its end; Delays are skipped (no other process runs)."""
    try:
        value = None
        while True:
            req = gen.send(value)
            assert isinstance(req, Delay), req
    except StopIteration as stop:
        return stop.value


def make_kernel(**overrides):
    sets = [f"{k}={v}" for k, v in overrides.items()]
    sc = load_scenario("migrate", ["machine.dram_pages=2048", "machine.cxl_pages=2048", *sets])
    layout = build_layout(sc)
    k = Kernel(sc, layout, 4, StandInCoordinator(4))
    k.policy = CountingPolicy(k)
    return k


class CountingPolicy(VanillaPolicy):
    def __init__(self, kernel):
        super().__init__(kernel)
        self.flushes = 0

    def try_to_unmap_flush(self, task, batch):
        self.flushes += 1
        yield from super().try_to_unmap_flush(task, batch)


def file_page(k, index, vpage):
    """Put page `index` of file 0 in the cache, mapped at `vpage`; returns its frame."""
    pfn = k.alloc.nodes[0].buddy.popleft()
    folio = k.folios[pfn]
    folio.cid, folio.anon, folio.file, folio.index = k.layout.file_cid(0, index), False, 0, index
    k.place_content(pfn, folio.cid)
    k.files[0].pages[index] = pfn
    k.map_page(vpage, pfn, False)
    k.lru_add(pfn)
    return pfn


def test_lru_second_chance_then_reclaim_and_activation():
    k = make_kernel()
    base = k.layout.vmas[0].start
    pfns = [file_page(k, i, base + i) for i in range(8)]
    for i in (0, 1):
        k.young[base + i] = 1                     # referenced since the last scan
    k.folios[pfns[1]].referenced = True          # ... and referenced before: activate
    reclaimed = drive(vmscan.shrink_node(k, Task(), 0, kswapd=True))
    assert reclaimed == 6                        # the 6 cold pages go
    assert k.folios[pfns[0]].referenced and k.folios[pfns[0]].lru == "inactive"  # 2nd chance
    assert k.folios[pfns[1]].lru == "active"
    assert k.vmstat["pgscan_kswapd"] == 8 and k.vmstat["pgsteal_kswapd"] == 6
    assert all(k.R.pte[base + i] == -1 for i in range(2, 8))
    assert k.R.pte[base] == make_pte(pfns[0], False)
    reclaimed = drive(vmscan.shrink_node(k, Task(), 0, kswapd=True))
    assert reclaimed == 1                        # page 0 lost its second chance


def test_inactive_list_is_refilled_from_active_when_low():
    k = make_kernel()
    base = k.layout.vmas[0].start
    pfns = [file_page(k, i, base + i) for i in range(6)]
    for p in pfns:
        k.lru_del(p)
        k.lru_add(p, active=True)
    vmscan.shrink_active_list(k, 0, "file", 4)
    lists = k.lru[0]
    assert len(lists[("inactive", "file")]) == 4 and len(lists[("active", "file")]) == 2
    assert k.vmstat["pgdeactivate"] == 4


def test_migration_is_batched_by_migrate_batch():
    k = make_kernel(**{"kernel.migrate_batch": 4})
    base = k.layout.vmas[0].start
    pfns = [file_page(k, i, base + i) for i in range(10)]
    done, failed = drive(migrate.migrate_pages_batch(k, Task(), pfns, 1, "pgdemote_kswapd"))
    assert (done, failed) == (10, [])
    assert k.policy.flushes == 3                 # 4 + 4 + 2: one flush per batch
    assert k.vmstat["pgmigrate_success"] == 10 and k.vmstat["pgdemote_kswapd"] == 10
    for i in range(10):
        new = k.R.pte[base + i] >> 2
        assert k.layout.node_of(new) == 1 and k.files[0].pages[i] == new
        assert frame_cid(k.R.frame[new]) == k.layout.file_cid(0, i)


def _hinted_cxl_page(k, scanned_ns):
    """A file page on the CXL node behind a NUMA hint PTE, scanned at `scanned_ns`."""
    base = k.layout.vmas[0].start
    pfn = file_page(k, 0, base)
    done, _ = drive(migrate.migrate_pages_batch(k, Task(), [pfn], 1, None))
    new = k.R.pte[base] >> 2
    assert done == 1 and k.layout.node_of(new) == 1
    k.set_pte(base, make_pte(new, False, False))      # the scanner's PROT_NONE hint
    k.folios[new].numa_scan_ns = scanned_ns
    return base, new


def test_hint_fault_on_a_hot_cxl_page_promotes_it_when_dram_has_room():
    k = make_kernel(**{"kernel.numa_balancing": "true"})
    task = Task()
    task.t = 1_000
    vpage, pfn = _hinted_cxl_page(k, scanned_ns=0)
    drive(numa_balancing.do_numa_page(k, task, vpage, k.R.pte[vpage]))
    assert k.vmstat["numa_hint_faults"] == 1 and k.vmstat["pgpromote_success"] == 1
    assert k.layout.node_of(k.R.pte[vpage] >> 2) == 0 and k.R.pte[vpage] & 1


def test_hint_fault_without_dram_room_wakes_kswapd_and_restores_the_pte():
    k = make_kernel(**{"kernel.numa_balancing": "true"})
    task = Task()
    task.t = 1_000
    vpage, pfn = _hinted_cxl_page(k, scanned_ns=0)
    while k.alloc.watermark_ok(0, 2, 1):              # DRAM down to its high watermark
        k.alloc.take(0, 0, k.policy)
    drive(numa_balancing.do_numa_page(k, task, vpage, k.R.pte[vpage]))
    assert k.vmstat["pgpromote_success"] == 0 and k.kswapd_awake[0]
    assert k.R.pte[vpage] == make_pte(pfn, False, True)


def test_a_tmpfs_miss_brings_in_one_page_without_io_and_fault_around_maps_only_cached():
    """A read fault on a file page not in the cache: from disk, a major fault whose
    readahead brings in the next readahead_pages, all of which fault-around then maps;
    in tmpfs (shmem_get_folio_gfp(), SGP_CACHE) only that page, cleared, no major fault,
    so fault-around maps only a neighbour some task brought in before. A tmpfs folio is
    swap-backed: it goes on the anon LRU."""
    for tmpfs in (False, True):
        k = make_kernel(**{"file.0.tmpfs": str(tmpfs).lower()})
        vma = k.layout.vmas[0]
        base = vma.start
        cached = file_page(k, 5, base + 5)
        k.unmap_pte(base + 5)                     # in the cache, not mapped
        drive(filemap.filemap_fault(k, Task(), vma, base, False))
        pfn = k.files[0].pages[0]
        around = [vp - base for vp in range(base + 1, base + 16) if k.R.pte[vp] >= 0]
        kind = next(kd for (_, kd), lst in k.lru[0].items() if pfn in lst)
        if tmpfs:
            assert sorted(k.files[0].pages) == [0, 5]
            assert k.vmstat["pgmajfault"] == 0 and kind == "anon"
            assert around == [5] and k.R.pte[base + 5] == make_pte(cached, False)
        else:
            assert sorted(k.files[0].pages) == list(range(32))
            assert k.vmstat["pgmajfault"] == 1 and kind == "file"
            assert around == list(range(1, 16))
        assert k.R.pte[base] == make_pte(pfn, False)
