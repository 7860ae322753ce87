"""Policy comparisons and the safety oracle on the built-in scenarios."""

from conftest import ipis, run_json

SMALL_LLAMA = ["--cpus", "48", "--set", "process.0.threads.0.repeat=3",
               "--set", "process.1.threads.0.repeat=3", "--set", "process.2.threads.0.repeat=3"]


def _compare(tmp_path, scenario, policies, *extra, ranks=4):
    doc = run_json(ranks, tmp_path, "compare", "--scenario", scenario, "--policies",
                   ",".join(policies), *extra, timeout=300)
    return {r["policy"]: r for r in doc["runs"]}


def _ordered(runs):
    """IPIs satisfy ideal <= luf <= vanilla, and the safe policies are safe."""
    assert ipis(runs["ideal"]) <= ipis(runs["luf"]) <= ipis(runs["vanilla"])
    for policy in ("vanilla", "luf", "ideal"):
        assert runs[policy]["oracle"]["violations"] == 0, policy
        assert runs[policy]["oracle"]["checked"] > 0


def test_reclaim_ideal_le_luf_le_vanilla(tmp_path):
    runs = _compare(tmp_path, "reclaim", ["vanilla", "luf", "ideal"],
                    *[f"--set=process.{i}.threads.0.repeat=4" for i in range(3)])
    assert ipis(runs["vanilla"]) > 0 and runs["vanilla"]["vmstat"]["pgsteal_kswapd"] > 0
    _ordered(runs)


def test_migrate_luf_defers_read_only_unmaps_safely_and_unsafe_is_caught(tmp_path):
    runs = _compare(tmp_path, "migrate", ["vanilla", "luf", "ideal", "unsafe"], "--cpus", "8")
    assert ipis(runs["vanilla"]) > 0
    _ordered(runs)
    assert runs["luf"]["policy_stats"]["pages_deferred"] > 0
    assert runs["vanilla"]["oracle"]["violations"] == 0
    assert runs["luf"]["oracle"]["violations"] == 0
    assert runs["unsafe"]["oracle"]["violations"] > 0
    assert runs["vanilla"]["vmstat"]["pgmigrate_success"] > 0


def test_migrate_writable_share_is_not_deferred(tmp_path):
    runs = _compare(tmp_path, "migrate", ["vanilla", "luf"], "--cpus", "8",
                    "--set", "vars.rw_fraction=1.0")
    assert runs["luf"]["oracle"]["violations"] == 0
    assert ipis(runs["luf"]) > 0


def test_user_unmaps_are_not_lazy_luf_equals_vanilla(tmp_path):
    runs = _compare(tmp_path, "munmap-storm", ["vanilla", "luf"], "--cpus", "8",
                    "--set", "process.0.threads.0.repeat=20")
    assert ipis(runs["vanilla"]) > 0
    assert runs["luf"]["per_cpu"]["tlb_shootdowns"] == runs["vanilla"]["per_cpu"]["tlb_shootdowns"]
    assert runs["luf"]["policy_stats"]["pages_deferred"] == 0


def test_small_llama_tiering_ideal_le_luf_le_vanilla(tmp_path):
    runs = _compare(tmp_path, "llama-tiering", ["vanilla", "luf", "ideal"], *SMALL_LLAMA)
    _ordered(runs)
    for run in runs.values():
        assert all(p["finished"] for p in run["processes"])
    assert runs["luf"]["policy_stats"]["pages_deferred"] > 0


def test_hazards_luf_is_as_safe_as_its_hooks(tmp_path):
    """(b) a second writable mmap bypasses LUF's hooks: the oracle must show it, and the
    fixed variant closes it; (e) write() goes through write_begin's hook: safe."""
    writer = _compare(tmp_path, "hazard-shared-writer",
                      ["vanilla", "luf", "luf-fixed", "ideal", "unsafe"], "--cpus", "8")
    assert writer["ideal"]["oracle"]["violations"] == 0
    assert writer["vanilla"]["oracle"]["violations"] == 0
    assert writer["luf"]["oracle"]["by_kind"]["stale-read-after-divergence"] > 0
    assert writer["luf-fixed"]["oracle"]["violations"] == 0
    assert writer["luf-fixed"]["policy_stats"]["flush_mkwrite_file"] > 0
    assert writer["unsafe"]["oracle"]["violations"] > 0
    write = _compare(tmp_path, "hazard-write", ["luf", "unsafe"], "--cpus", "8")
    assert write["luf"]["oracle"]["violations"] == 0
    assert write["luf"]["policy_stats"]["flush_file_write"] > 0
    assert write["unsafe"]["oracle"]["violations"] > 0
