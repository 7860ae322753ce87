"""Same inputs give the same simulated results, whatever the placement of CPUs on ranks
(one rank per CPU or four CPUs per rank). One node or several, dormant ranks and ranks
sleeping through windows: tests/test_parking.py."""

from conftest import run_json

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
