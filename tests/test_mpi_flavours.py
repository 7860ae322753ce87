"""emu runs unchanged under MPICH and Open MPI, and the MPI does not change the results."""

import json

from conftest import other_mpi_or_skip, run_json, selected_mpi

from emu.results import simulated_view

PAIR = ("compare", "--scenario", "munmap-pair", "--policies", "vanilla,luf",
        "--set", "process.0.threads.0.repeat=20")
TWO_NODES = {"EMU_RANKS_PER_NODE": "2"}   # 3 ranks as 2 nodes: leaders talk over MPI too


def _simulated(doc: dict) -> str:
    return json.dumps([simulated_view(r) for r in doc["runs"]], sort_keys=True)


def test_results_are_byte_identical_under_mpich_and_openmpi(tmp_path):
    mine = selected_mpi()
    other = other_mpi_or_skip(mine)
    a = run_json(3, tmp_path, *PAIR, env=TWO_NODES, mpi=mine)
    b = run_json(3, tmp_path, *PAIR, env=TWO_NODES, mpi=other)
    assert _simulated(a) == _simulated(b)
    assert sum(a["runs"][0]["per_cpu"]["tlb_shootdowns"]) > 0   # IPIs did cross ranks
