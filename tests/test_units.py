"""Pure logic, no MPI: TLB arrays, flush ranges, LUF bookkeeping, watermarks, the
allocator's preference for clean pages, scenario loading and its errors."""

import numpy as np
import pytest

from emu.errors import EmuError
from emu.hw.tlb_cache import TLBArray, tlb_key
from emu.mm.page_alloc import FreeList, compute_watermarks, zone_batchsize
from emu.mm.tlb import flush_npages
from emu.policy.luf_batch import (
    LufBatch,
    LufTable,
    cpumask_bits,
    cpumask_cpus,
    next_ugen,
    prev_ugen,
    ugen_before,
)
from emu.protocol import FULL
from emu.scenario.load import builtin_names, load_scenario


def test_tlb_is_set_associative_lru():
    tlb = TLBArray(8, 2)                       # 4 sets of 2 ways
    for v in (0, 4, 8):                        # all map to set 0
        tlb.insert(tlb_key(1, v), v, ("e", v))
    assert tlb.lookup(tlb_key(1, 0), 0) is None        # oldest evicted
    assert tlb.lookup(tlb_key(1, 4), 4) == ("e", 4)
    tlb.insert(tlb_key(1, 12), 12, ("e", 12))           # 8 is now least recent
    assert tlb.lookup(tlb_key(1, 8), 8) is None
    assert tlb.lookup(tlb_key(2, 4), 4) is None         # another PCID tag never matches
    tlb.invalidate(tlb_key(1, 4), 4)
    assert tlb.lookup(tlb_key(1, 4), 4) is None


def test_range_flush_ceiling_is_33_pages():
    assert flush_npages(33, 33) == 33
    assert flush_npages(34, 33) == FULL


def test_ugen_comparison_survives_wrap_around():
    assert ugen_before(1, 2, bits=8)
    assert not ugen_before(2, 1, bits=8)
    assert ugen_before(250, 3, bits=8)          # 3 is newer after wrapping past 255
    assert not ugen_before(3, 250, bits=8)
    assert not ugen_before(7, 7, bits=8)


def test_luf_key_reuse_folds_masks_keeps_newer_ugen_and_diets_the_old_mask():
    table = LufTable(ncpus=4, bits=16, nr_keys=3)     # keys 1, 2, then 1 again (0 skipped)
    k1, u1 = table.add({0, 1})
    k2, _ = table.add({2})
    table.mark_done([0], u1)                    # CPU 0 flushed since the first batch
    k3, u3 = table.add({3})
    assert k3 == k1 and k2 != k1 and 0 not in (k1, k2)
    assert table.batches[k1].cpumask == {1, 3}  # __fold_luf_batch(): diet by the old ugen
    assert table.batches[k1].ugen == u3 and ugen_before(u1, u3, 16)


def test_cpumask_bits_hold_exactly_the_cpus_given():
    rng = np.random.default_rng(7)
    for _ in range(200):
        cpus = set(rng.choice(512, size=int(rng.integers(0, 130)), replace=False).tolist())
        assert cpumask_cpus(cpumask_bits(cpus)) == cpus
        assert LufBatch(cpus).cpumask == cpus
    assert LufBatch().empty() and not LufBatch({0}).empty()


def test_ugen_skips_values_invalid_as_unsigned_short():
    assert next_ugen(0xFFFF) == 0x10001 and prev_ugen(0x10001) == 0xFFFF
    assert next_ugen(0xFFFF, bits=16) == 1


def test_partial_shootdown_selects_only_cpus_not_done():
    table = LufTable(ncpus=4)
    _, ugen = table.add({0, 1, 2, 3})
    table.mark_done([1, 3], ugen)
    assert table.pending_cpus(LufBatch({0, 1, 2, 3}, ugen)) == [0, 2]
    table.mark_done([0, 2], ugen)
    assert table.pending_cpus(LufBatch({0, 1, 2, 3}, ugen)) == []
    _, newer = table.add({0})
    assert table.pending_cpus(LufBatch({0}, newer)) == [0]


def test_watermarks_follow_the_kernel_formula():
    marks = compute_watermarks([3000, 6857], 0, 10)
    wmin, low, high = marks[0]
    assert 0 < wmin < low < high < 3000
    assert low - wmin == high - low
    assert zone_batchsize(1 << 20) == 63 and zone_batchsize(1000) == 1


class _Zone:
    """A policy stand-in: whether the zone's flushes cover the pend_list."""

    def __init__(self, done: bool):
        self.done = done

    def zone_flushed(self, node: int, zone_ugen: int) -> bool:
        return self.done


def _allocator(fl, wmin: int):
    from emu.mm.page_alloc import PageAllocator
    alloc = PageAllocator.__new__(PageAllocator)
    alloc.nodes, alloc.watermarks = [fl], [[wmin, wmin, wmin]]
    return alloc


def test_allocator_prefers_clean_pages_and_pcp_before_refill():
    fl = FreeList(0, [], ncpus=1, batch=2, high=8)
    fl.pcp[0].append(4)
    fl.pcp_pending[0].extend([1, 2])
    fl.buddy.extend([3])
    alloc = _allocator(fl, 0)
    assert alloc.take(0, 0, _Zone(False)) == (4, False, [])    # the clean page first
    assert alloc.take(0, 0, _Zone(False)) == (1, True, [])     # then the pcp's pending
    assert alloc.take(0, 0, _Zone(False)) == (2, True, [])     # ... before any refill
    assert alloc.take(0, 0, _Zone(False)) == (-1, False, [(3, False)])


def test_buddy_refill_takes_pending_first_only_when_clean_pages_run_short():
    fl = FreeList(0, [10, 11], ncpus=1, batch=2, high=8)
    fl.buddy_pending.extend([20, 21])
    assert _allocator(fl, 1).take(0, 0, _Zone(False))[2] == [(10, False), (11, False)]
    fl = FreeList(0, [10, 11], ncpus=1, batch=2, high=8)
    fl.buddy_pending.extend([20, 21])                          # 4 free, 2 pending: not > 2
    assert _allocator(fl, 2).take(0, 0, _Zone(False))[2] == [(20, True), (21, True)]
    fl = FreeList(0, [10, 11], ncpus=1, batch=2, high=8)
    fl.buddy_pending.extend([20, 21])                          # flushed: clean again
    assert _allocator(fl, 2).take(0, 0, _Zone(True))[2] == [(10, False), (11, False)]
    assert not fl.buddy_pending and list(fl.buddy) == [20, 21]


def test_every_builtin_scenario_loads():
    names = builtin_names()
    for required in ("munmap-pair", "madvise-pair", "mprotect-pair", "munmap-storm",
                     "llama-tiering", "reclaim", "migrate"):
        assert required in names
    for name in names:
        assert load_scenario(name)["process"]


def test_set_overrides_and_rejects_unknown_keys():
    sc = load_scenario("munmap-pair", ["machine.dram_pages=8192", "vars.sibling=sleep"])
    assert sc["machine"]["dram_pages"] == 8192
    assert sc["process"][0]["threads"][1]["steps"][0]["op"] == "sleep"
    with pytest.raises(EmuError, match="key 'machine.nope': unknown key"):
        load_scenario("munmap-pair", ["machine.nope=1"])


def test_scenario_errors_name_file_line_and_key(tmp_path):
    bad = tmp_path / "s.toml"
    bad.write_text("[scenario]\n\n[machine]\ndram_pages = -3\n")
    with pytest.raises(EmuError, match=r"s.toml:4: key 'machine.dram_pages'.*negative"):
        load_scenario(str(bad))


def test_scale_grows_memory_files_mappings_and_numa_scan_together():
    one = load_scenario("llama-tiering")
    four = load_scenario("llama-tiering", ["scenario.scale=4"])
    assert four["machine"]["dram_pages"] == 4 * one["machine"]["dram_pages"]
    assert four["machine"]["cxl_pages"] == 4 * one["machine"]["cxl_pages"]
    assert [f["pages"] for f in four["file"]] == [4 * f["pages"] for f in one["file"]]
    assert four["process"][0]["mappings"][0]["pages"] == 4 * one["process"][0]["mappings"][0]["pages"]
    assert four["kernel"]["numa_scan_period_ns"] == 4 * one["kernel"]["numa_scan_period_ns"]
    with pytest.raises(EmuError, match="at least 1"):
        load_scenario("llama-tiering", ["scenario.scale=0"])
