"""Reclaim, demotion and the NUMA scanner each do their work, and send IPIs, in a small
multi-rank tiering run (whether a page is touched again while its hint PTE is set, and
then finds DRAM room to be promoted, is a matter of the run's dynamics; hint faults and
promotion are tested in test_mm_units.py)."""

from conftest import run_json
from test_policies import SMALL_LLAMA


def test_reclaim_demotion_promotion_counters(tmp_path):
    doc = run_json(2, tmp_path, "run", "--scenario", "llama-tiering", *SMALL_LLAMA,
                   timeout=300)
    run = doc["runs"][0]
    vm = run["vmstat"]
    assert vm["pgscan_kswapd"] > 0 and vm["pgsteal_kswapd"] > 0
    assert vm["pgdemote_kswapd"] > 0
    assert vm["numa_pte_updates"] > 0
    assert vm["pgmajfault"] > 0
    sources = run["shootdowns_by_source"]
    for source in ("reclaim", "demotion", "numa_scan"):
        assert sources[source]["ipis"] > 0, sources
