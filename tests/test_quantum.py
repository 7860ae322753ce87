"""The window (quantum) makes runs faster but coarser: as it shrinks the simulated
runtime converges, and the shootdown count, which does not depend on timing here, stays."""

from conftest import ipis, run_json


def test_results_converge_as_the_quantum_shrinks(tmp_path):
    runtimes, counts = [], []
    for q in (4000, 2000, 1000, 500, 250):
        run = run_json(2, tmp_path, "run", "--scenario", "munmap-pair", "--quantum-ns", str(q),
                       "--set", "process.0.threads.0.repeat=100")["runs"][0]
        runtimes.append(run["runtime_ns"])
        counts.append(ipis(run))
    steps = [a - b for a, b in zip(runtimes, runtimes[1:], strict=False)]
    assert all(s > 0 for s in steps), runtimes            # coarser windows cost more time
    assert all(later < earlier for earlier, later in zip(steps, steps[1:], strict=False)), steps
    assert counts == [100] * len(counts)
