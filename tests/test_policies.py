"""Policies on the built-in scenarios: properties that hold by construction.

`ideal` sends IPIs only to CPUs that really cache a frame, at the last safe moment, so
no safe policy sends fewer; vanilla, luf and ideal are safe (the oracle finds nothing);
`unsafe` is caught. How luf compares with vanilla is an outcome, not a property, and is
not asserted. LUF's flush points, with the test-only `kernel.luf_test_disable`: fault,
take-off, write_begin, tlb_end_vma and not_freed each have a small scenario that only
they make safe (switched off, the oracle must find violations); the switch flush is not
needed alone and its test checks what it does.
"""

import pytest
from conftest import ipis, run_json

# llama-tiering at 1/5 of its memory (the same ratios of model, DRAM and CXL), two
# threads per model, two tokens, on 8 CPUs: reclaim, demotion and the NUMA scanner
# all run, in a few seconds.
SMALL_LLAMA = ["--cpus", "8", "--set", "machine.dram_pages=600", "--set", "machine.cxl_pages=1372"]
for _i in range(3):
    SMALL_LLAMA += ["--set", f"process.{_i}.threads.0.count=2",
                    "--set", f"process.{_i}.threads.0.repeat=2",
                    "--set", f"file.{_i}.pages=1000", "--set", f"process.{_i}.mappings.0.pages=1000"]
HAZARDS = ["hazard-map-fixed", "hazard-shared-writer", "hazard-kernel-reuse",
           "hazard-munmap-cleared", "hazard-write"]


def _compare(tmp_path, scenario, policies, *extra, ranks=2):
    doc = run_json(ranks, tmp_path, "compare", "--scenario", scenario, "--policies",
                   ",".join(policies), *extra, timeout=300)
    return {r["policy"]: r for r in doc["runs"]}


def _safe_and_ideal_lowest(runs):
    for policy in ("vanilla", "luf", "ideal"):
        assert runs[policy]["oracle"]["violations"] == 0, policy
        assert runs[policy]["oracle"]["checked"] > 0
    for policy in ("vanilla", "luf"):
        assert ipis(runs["ideal"]) <= ipis(runs[policy]), policy


def test_reclaim_safe_and_ideal_lowest(tmp_path):
    runs = _compare(tmp_path, "reclaim", ["vanilla", "luf", "ideal"],     # one pass each:
                    *[f"--set=process.{i}.threads.0.repeat=1" for i in range(3)])  # reclaims
    assert ipis(runs["vanilla"]) > 0 and runs["vanilla"]["vmstat"]["pgsteal_kswapd"] > 0
    _safe_and_ideal_lowest(runs)
    for run in runs.values():       # a property of the workload: the same for every policy
        assert run["unmap_ro_rw"]["ro"] + run["unmap_ro_rw"]["rw"] > 0


def test_migrate_luf_defers_read_only_unmaps_safely_and_unsafe_is_caught(tmp_path):
    runs = _compare(tmp_path, "migrate", ["vanilla", "luf", "ideal", "unsafe"], "--cpus", "8")
    assert ipis(runs["vanilla"]) > 0
    _safe_and_ideal_lowest(runs)
    assert runs["luf"]["policy_stats"]["pages_deferred"] > 0
    assert runs["unsafe"]["oracle"]["violations"] > 0
    assert runs["vanilla"]["vmstat"]["pgmigrate_success"] > 0
    assert runs["vanilla"]["unmap_ro_rw"]["ro"] > 0


def test_migrate_writable_share_is_not_deferred(tmp_path):
    runs = _compare(tmp_path, "migrate", ["vanilla", "luf"], "--cpus", "8",
                    "--set", "vars.rw_fraction=1.0")
    assert runs["luf"]["oracle"]["violations"] == 0
    assert runs["luf"]["policy_stats"]["pages_deferred"] == 0
    assert runs["luf"]["unmap_ro_rw"]["ro"] == 0 and runs["luf"]["unmap_ro_rw"]["rw"] > 0
    assert ipis(runs["luf"]) > 0


def test_user_unmaps_are_not_lazy_luf_equals_vanilla(tmp_path):
    runs = _compare(tmp_path, "munmap-storm", ["vanilla", "luf"], "--cpus", "8",
                    "--set", "process.0.threads.0.repeat=3")
    assert ipis(runs["vanilla"]) > 0
    assert runs["luf"]["per_cpu"]["tlb_shootdowns"] == runs["vanilla"]["per_cpu"]["tlb_shootdowns"]
    assert runs["luf"]["policy_stats"]["pages_deferred"] == 0


def test_small_llama_tiering_safe_and_ideal_lowest(tmp_path):
    runs = _compare(tmp_path, "llama-tiering", ["vanilla", "luf", "ideal"], *SMALL_LLAMA)
    _safe_and_ideal_lowest(runs)
    for run in runs.values():
        assert all(p["finished"] for p in run["processes"])
    assert runs["luf"]["policy_stats"]["pages_deferred"] > 0


@pytest.mark.parametrize("scenario", HAZARDS)
def test_hazard_is_safe_with_vanilla_luf_ideal_and_caught_with_unsafe(tmp_path, scenario):
    runs = _compare(tmp_path, scenario, ["vanilla", "luf", "ideal", "unsafe"], "--cpus", "8",
                    ranks=2)
    _safe_and_ideal_lowest(runs)
    assert runs["unsafe"]["oracle"]["violations"] > 0


def _luf_without(tmp_path, scenario, point):
    doc = run_json(2, tmp_path, "run", "--scenario", scenario, "--policy", "luf", "--cpus",
                   "8", "--set", f"kernel.luf_test_disable={point}", timeout=300)
    return doc["runs"][0]


# In every hazard the madvise thread sleeps after the pageout, so its CPU idles lazily
# on the victim's mm and its wake-up runs finish_task_switch()'s luf_flush_mm(), which
# reaches the reader first; each point below is shown alone with that flush off too.
def test_fault_flush_alone_closes_the_shared_writer_hazard(tmp_path):
    """handle_mm_fault()'s luf_flush_mapping() for a VM_SHARED file (patch 20)."""
    run = _luf_without(tmp_path, "hazard-shared-writer", "fault,switch")
    assert run["oracle"]["by_kind"]["stale-read-after-divergence"] > 0


def test_takeoff_flush_alone_closes_kernel_reuse(tmp_path):
    run = _luf_without(tmp_path, "hazard-kernel-reuse", "takeoff,switch")
    assert run["oracle"]["by_kind"]["reallocated-frame"] > 0


def test_switch_flush_runs_only_under_luf_after_idle_borrowed_a_pending_mm(tmp_path):
    """finish_task_switch() -> luf_flush_mm(prev_mm) (patch 19). Not needed for safety
    in emu (docs/luf.md): every hazard has a later point that covers it. Here, with the
    take-off flush off, it alone reaches the reader: CPU 0 idles on the victim's mm
    after the pageout and flushes its pending CPUs when its thread wakes. vanilla never
    sends it; without the idle after the pageout there is no idle -> task switch from a
    pending mm, so it never fires."""
    runs = _compare(tmp_path, "hazard-kernel-reuse", ["vanilla", "luf"], "--cpus", "8",
                    "--set", "kernel.luf_test_disable=takeoff", ranks=2)
    luf, vanilla = runs["luf"], runs["vanilla"]
    assert luf["oracle"]["violations"] == 0
    assert luf["policy_stats"]["flush_switch"] >= 1
    assert luf["shootdowns_by_source"]["luf_switch"]["ipis"] >= 1
    assert luf["shootdown_latency_ns"]["luf_switch"]["count"] >= 1
    assert "flush_switch" not in vanilla["policy_stats"]
    assert "luf_switch" not in vanilla["shootdowns_by_source"]
    assert "luf_switch" not in vanilla["shootdown_latency_ns"]
    from emu.scenario.load import BUILTIN
    text = (BUILTIN / "hazard-kernel-reuse.toml").read_text()
    sleep = '    { op = "sleep", ns = 1_000_000 },\n    { op = "kalloc"'
    assert text.count(sleep) == 1
    path = tmp_path / "no-idle-after-pageout.toml"
    path.write_text(text.replace(sleep, '    { op = "kalloc"'))
    run = run_json(2, tmp_path, "run", "--scenario", str(path), "--policy", "luf", "--cpus",
                   "8", timeout=300)["runs"][0]
    assert run["oracle"]["violations"] == 0
    assert run["policy_stats"].get("flush_switch", 0) == 0
    assert run["policy_stats"]["flush_takeoff"] >= 1


def test_file_write_flush_alone_closes_a_write_from_another_cpu(tmp_path):
    """write() from a CPU whose page list holds none of the pending frames: no take-off
    flush happens, only write_begin's luf_flush_mapping() protects the reader."""
    from emu.scenario.load import BUILTIN
    text = (BUILTIN / "hazard-write.toml").read_text()
    old = ('    { op = "sleep", ns = 1_000_000 },\n'
           '    { op = "write", file = "data", offset = 0, pages = 48 },\n  ]')
    assert old in text
    path = tmp_path / "write-elsewhere.toml"
    path.write_text(text.replace(old, '    { op = "sleep", ns = 1_000_000 },\n  ]\n\n'
                                 '  [[process.threads]]\n  cpus = [4]\n  steps = [\n'
                                 '    { op = "sleep", ns = 3_000_000 },\n'
                                 '    { op = "write", file = "data", offset = 0, pages = 48 },'
                                 '\n  ]'))
    safe = run_json(2, tmp_path, "run", "--scenario", str(path), "--policy", "luf",
                    "--cpus", "8", timeout=300)["runs"][0]
    assert safe["oracle"]["violations"] == 0
    assert safe["policy_stats"].get("flush_takeoff", 0) == 0
    run = _luf_without(tmp_path, str(path), "file_write,switch")
    assert run["oracle"]["by_kind"]["stale-read-after-divergence"] > 0


def test_tlb_end_vma_flush_alone_closes_kernel_reuse_for_another_mapper(tmp_path):
    """tlb_end_vma() -> luf_flush_vma() (patches 16, 19-20) flushes the file's pending
    CPUs for a VM_SHARED file VMA, whichever mm walks it: here a bystander process that
    never touched the file munmaps its shared mapping between the pageout and the
    reuse. Its own flush_tlb_batched_pending() has nothing to do (the reader's mm is
    another), so with the take-off and switch flushes off, this point alone keeps the
    reader from the reallocated frames; off as well, the oracle sees them."""
    from emu.scenario.load import BUILTIN
    text = (BUILTIN / "hazard-kernel-reuse.toml").read_text()
    path = tmp_path / "bystander-munmap.toml"
    path.write_text(text + '\n[[process]]\nname = "bystander"\n\n  [[process.mappings]]\n'
                    '  name = "data"\n  kind = "file"\n  file = "data"\n  pages = 48\n'
                    '  prot = "rw"\n  shared = true\n\n  [[process.threads]]\n  cpus = [4]\n'
                    '  steps = [\n    { op = "sleep", ns = 2_500_000 },\n'
                    '    { op = "munmap", mapping = "data" },\n  ]\n')
    safe = _luf_without(tmp_path, str(path), "takeoff,switch")
    assert safe["oracle"]["violations"] == 0
    assert safe["policy_stats"]["flush_tlb_end_vma"] >= 1
    run = _luf_without(tmp_path, str(path), "takeoff,switch,tlb_end_vma")
    assert run["oracle"]["by_kind"]["reallocated-frame"] > 0


def test_not_freed_flush_alone_closes_a_dirty_folio_kept_by_reclaim(tmp_path):
    """luf_flush(fold_unmap_luf()) on shrink_folio_list()'s keep paths (patch 24). The
    reader's file pages are dirtied by write() before the pageout, so reclaim unmaps them
    (read-only: deferred) and keeps them for writeback. kswapd frees them later with no
    PTE left to unmap, so with no key, and the kernel allocation reuses the frames: with
    the switch flush off (above), only the keep path's flush reaches the reader first;
    off as well, the oracle sees the reallocated frames."""
    from emu.scenario.load import BUILTIN
    text = (BUILTIN / "hazard-kernel-reuse.toml").read_text()
    old = ('    { op = "sleep", ns = 2_000_000 },\n'
           '    { op = "madvise", mapping = "data", advice = "pageout" },\n'
           '    { op = "sleep", ns = 1_000_000 },\n'
           '    { op = "kalloc", pages = 900 },\n')
    assert old in text
    path = tmp_path / "dirty-pageout.toml"
    path.write_text(text.replace(old, '    { op = "sleep", ns = 1_000_000 },\n'
                                 '    { op = "write", file = "data", offset = 0, pages = 48 },\n'
                                 + old.replace("2_000_000", "1_000_000")
                                      .replace("900", "1470")))
    safe = _luf_without(tmp_path, str(path), "switch")
    assert safe["oracle"]["violations"] == 0
    assert safe["vmstat"]["nr_vmscan_write"] == 48
    assert safe["policy_stats"]["flush_not_freed"] >= 1
    run = _luf_without(tmp_path, str(path), "not_freed,switch")
    assert run["vmstat"]["nr_vmscan_write"] == 48
    assert run["oracle"]["by_kind"]["reallocated-frame"] > 0
