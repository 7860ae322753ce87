"""The slides' figures (shared/data/seed-results.json, copied into the package) beside
emu's, for the llama-tiering scenario: as text for the report, as series for the plot."""

import json
from importlib import resources

# (label, emu per-CPU counter, seed key) of the perf counters the slides compare
COUNTERS = (("dTLB-load-misses", "dtlb_load_misses", "dTLB_load_misses"),
            ("dTLB-store-misses", "dtlb_store_misses", "dTLB_store_misses"),
            ("iTLB-load-misses", "itlb_load_misses", "iTLB_load_misses"))


def seed_results() -> dict:
    return json.loads((resources.files("emu.report") / "seed-results.json").read_text())


def _mean(xs: list) -> float:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs)


def _change(new: float, old: float) -> float:
    return 100 * (new / old - 1)


def comparable(runs: list[dict]) -> bool:
    """Whether the runs can be set beside the slides: llama scenario with a vanilla run."""
    return any(r["policy"] == "vanilla" for r in runs) and runs[0]["scenario"].startswith("llama")


def seed_changes(runs: list[dict]) -> list[tuple[str, float, float | None]]:
    """(metric, slides' luf-vs-vanilla change in %, emu's or None if it has no luf run or
    a zero vanilla figure) for the slides' table: TLB shootdowns per CPU, the three perf
    TLB-miss counters, and the llama runtime."""
    pol = {r["policy"]: r for r in runs}
    v, lr = pol["vanilla"], pol.get("luf")
    seed = seed_results()
    sv, sl = seed["vanilla"], seed["luf"]

    def emu(fn) -> float | None:
        return _change(fn(lr), fn(v)) if lr and fn(v) else None

    out = [("TLB shootdowns/CPU", _change(_mean(sl["tlb_shootdowns_per_cpu"]),
                                          _mean(sv["tlb_shootdowns_per_cpu"])),
            emu(lambda r: sum(r["per_cpu"]["tlb_shootdowns"]) / r["cpus"]))]
    for name, key, sk in COUNTERS:
        out.append((name, _change(sl[sk], sv[sk]), emu(lambda r, k=key: sum(r["per_cpu"][k]))))
    out.append(("runtime per run", _change(_mean(sl["llama_total_time_ms"]),
                                           _mean(sv["llama_total_time_ms"])),
                emu(lambda r: r["runtime_ns"])))
    return out


def seed_comparison(runs: list[dict]) -> str:
    if not comparable(runs):
        return ""
    seed = seed_results()
    pol = {r["policy"]: r for r in runs}
    v, lr = pol["vanilla"], pol.get("luf")
    changes = seed_changes(runs)
    rows = ["== Beside the slides (64-CPU Xeon, 4000 s; emu is scaled down: compare ratios) =="]
    name, slides, ours = changes[0]
    line = f"{name}  slides: vanilla {_mean(seed['vanilla']['tlb_shootdowns_per_cpu']):,.0f}, " \
           f"luf {_mean(seed['luf']['tlb_shootdowns_per_cpu']):,.0f} ({slides:+.1f}%);  emu: " \
           f"vanilla {sum(v['per_cpu']['tlb_shootdowns']) / v['cpus']:,.1f}"
    if lr:
        line += f", luf {sum(lr['per_cpu']['tlb_shootdowns']) / lr['cpus']:,.1f}"
        if ours is not None:
            line += f" ({ours:+.1f}%)"
    rows.append(line)
    for name, slides, ours in changes[1:]:
        rows.append(f"{name:<18}  slides: {slides:+.1f}%" +
                    (f";  emu: {ours:+.1f}%" if ours is not None else ""))
    return "\n".join(rows)
