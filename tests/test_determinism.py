"""Same inputs give the same simulated results, whatever the placement of CPUs on ranks
(one rank per CPU or four CPUs per rank; one node or several)."""

from conftest import run_json

from emu.results import simulated_view

STORM = ("run", "--scenario", "munmap-storm", "--cpus", "16",
         "--set", "process.0.threads.0.repeat=20", "--set", "process.0.threads.1.repeat=20",
         "--set", "process.0.threads.2.repeat=20", "--set", "process.0.threads.3.repeat=20")


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


def test_several_nodes_give_the_same_results(tmp_path):
    one = run_json(4, tmp_path, *STORM)
    two = run_json(4, tmp_path, *STORM, env={"EMU_RANKS_PER_NODE": "2"})
    assert simulated_view(one["runs"][0]) == simulated_view(two["runs"][0])


def test_dormant_ranks_do_not_change_results(tmp_path):
    """CPUs with no thread live on dormant ranks at -n 8 (ranks 6 and 7 skip every
    window) but beside busy CPUs at -n 2: the results must not notice."""
    small = ["run", "--scenario", "llama-tiering", "--cpus", "64"] + \
        [f"--set=process.{i}.threads.0.{key}" for i in range(3)
         for key in ("repeat=1", "count=4")]
    two = run_json(2, tmp_path, *small)
    eight = run_json(8, tmp_path, *small)
    assert simulated_view(two["runs"][0]) == simulated_view(eight["runs"][0])
