"""The quantum only bounds how far components run ahead of one another: latencies are
carried by timestamps, so simulated results must converge as the window shrinks, and a
scenario whose shootdowns are all on the user path must not depend on it at all."""

from conftest import ipis, run_json

QUANTA = (10_000, 2_000, 500)


def _close(values: list[float], tolerance: float) -> bool:
    ref = values[-1]                      # the finest window is the reference
    return all(abs(v - ref) <= tolerance * max(abs(ref), 1) for v in values)


def test_user_path_timing_does_not_depend_on_the_quantum(tmp_path):
    """munmap-pair: every hop (syscall, IPI, ack, reply) is timed by its timestamp."""
    runs = [run_json(2, tmp_path, "run", "--scenario", "munmap-pair", "--quantum-ns", str(q),
                     "--set", "process.0.threads.0.repeat=100")["runs"][0] for q in (4000, 250)]
    assert _close([r["runtime_ns"] for r in runs], 0.01), [r["runtime_ns"] for r in runs]
    assert [ipis(r) for r in runs] == [100, 100]
    lat = [r["shootdown_latency_ns"]["munmap"] for r in runs]
    assert lat[0] == lat[1] and lat[0]["count"] == 100, lat


def test_reclaim_converges_as_the_quantum_shrinks(tmp_path):
    """reclaim (kswapd and direct reclaim against three streaming readers): runtime and
    the counts that come from the mechanisms agree across the quanta."""
    runs = {}
    for q in QUANTA:
        doc = run_json(4, tmp_path, "compare", "--scenario", "reclaim", "--policies",
                       "vanilla,luf", "--quantum-ns", str(q),
                       *[f"--set=process.{i}.threads.0.repeat=2" for i in range(3)], timeout=300)
        for r in doc["runs"]:
            runs.setdefault(r["policy"], []).append(r)
    for policy, rs in runs.items():
        assert ipis(rs[-1]) > 0 and rs[-1]["vmstat"]["pgsteal_kswapd"] > 0, policy
        assert _close([r["runtime_ns"] for r in rs], 0.02), (policy, [r["runtime_ns"] for r in rs])
        for name, get in (("IPIs", ipis),
                          ("nr_tlb_remote_flush", lambda r: r["vmstat"]["nr_tlb_remote_flush"]),
                          ("dTLB-load-misses", lambda r: sum(r["per_cpu"]["dtlb_load_misses"])),
                          ("iTLB-load-misses", lambda r: sum(r["per_cpu"]["itlb_load_misses"]))):
            assert _close([get(r) for r in rs], 0.05), (policy, name, [get(r) for r in rs])
