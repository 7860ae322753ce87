"""Same inputs give the same simulated results, whatever the placement of CPUs on ranks
(one rank per CPU or four CPUs per rank). One node or several, dormant ranks and ranks
sleeping through windows: tests/test_parking.py."""

import re

from conftest import ROOT, run_emu, run_json

from emu.results import simulated_view

STORM = ("run", "--scenario", "munmap-storm", "--cpus", "16",
         "--set", "process.0.threads.0.repeat=10", "--set", "process.0.threads.1.repeat=10",
         "--set", "process.0.threads.2.repeat=10", "--set", "process.0.threads.3.repeat=10")


def test_same_run_twice_is_identical(tmp_path):
    a = run_json(2, tmp_path, *STORM)
    b = run_json(2, tmp_path, *STORM)
    assert simulated_view(a["runs"][0]) == simulated_view(b["runs"][0])
    assert sum(a["runs"][0]["per_cpu"]["tlb_shootdowns"]) > 0


def test_placement_does_not_change_results(tmp_path):
    four = run_json(4, tmp_path, *STORM)
    sixteen = run_json(16, tmp_path, *STORM, timeout=300)
    assert simulated_view(four["runs"][0]) == simulated_view(sixteen["runs"][0])
    assert four["runs"][0]["comm"]["mpi_messages"] != sixteen["runs"][0]["comm"]["mpi_messages"]


def test_runs_of_a_job_share_its_window_sync_without_leaking_state(tmp_path):
    """A job builds one WindowSync and every run begins on it (begin_run): a run after
    others gives what it gives alone, on two fake nodes (leaders exchanging too)."""
    env = {"EMU_RANKS_PER_NODE": "2"}
    job = run_json(4, tmp_path, "compare", *STORM[1:], "--policies", "vanilla,luf",
                   env=env)["runs"]
    alone = run_json(4, tmp_path, *STORM, "--policy", "luf", env=env)["runs"][0]
    assert simulated_view(job[1]) == simulated_view(alone)


def test_begin_run_leaves_a_used_window_sync_as_a_new_one(tmp_path):
    """The state a run leaves (arrivals, flags, counts, a wake-up byte in a pipe, the
    ring's head, parked ranks, placement) is gone after begin_run, on every rank of
    two fake nodes; a run that read it would wait for nobody or wake at once."""
    script = str(ROOT / "tests" / "fixtures" / "window_sync_reuse.py")
    res = run_emu(4, program=(script,), env={"EMU_RANKS_PER_NODE": "2"}, timeout=120)
    assert sorted(re.findall(r"rank \d+ ok", res.stdout)) == [f"rank {r} ok" for r in range(4)]
