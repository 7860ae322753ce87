"""Reclaim, demotion and NUMA hint faults each happen in a small multi-rank tiering run
(whether a hint fault finds DRAM room to promote is a matter of the run's dynamics; the
promotion path itself is tested in test_mm_units.py)."""

from conftest import run_json
from test_policies import SMALL_LLAMA


def test_reclaim_demotion_promotion_counters(tmp_path):
    doc = run_json(4, tmp_path, "run", "--scenario", "llama-tiering", *SMALL_LLAMA,
                   timeout=300)
    run = doc["runs"][0]
    vm = run["vmstat"]
    assert vm["pgscan_kswapd"] > 0 and vm["pgsteal_kswapd"] > 0
    assert vm["pgdemote_kswapd"] > 0
    assert vm["numa_hint_faults"] > 0
    assert vm["pgmajfault"] > 0
    sources = run["shootdowns_by_source"]
    for source in ("reclaim", "demotion", "numa_scan"):
        assert sources[source]["ipis"] > 0, sources
