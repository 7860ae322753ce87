"""The slides' figures (shared/data/seed-results.json, copied into the package) beside
emu's, for the llama-tiering scenario."""

import json
from importlib import resources


def seed_results() -> dict:
    return json.loads((resources.files("emu.report") / "seed-results.json").read_text())


def seed_comparison(runs: list[dict]) -> str:
    pol = {r["policy"]: r for r in runs}
    if "vanilla" not in pol or not runs[0]["scenario"].startswith("llama"):
        return ""
    seed = seed_results()
    rows = ["== Beside the slides (64-CPU Xeon, 4000 s; emu is scaled down: compare ratios) =="]

    def mean(xs):
        xs = [x for x in xs if x is not None]
        return sum(xs) / len(xs)

    v = pol["vanilla"]
    l_run = pol.get("luf")
    sv, sl = seed["vanilla"], seed["luf"]
    ipis_v = sum(v["per_cpu"]["tlb_shootdowns"])
    seed_v, seed_l = mean(sv["tlb_shootdowns_per_cpu"]), mean(sl["tlb_shootdowns_per_cpu"])
    line = f"TLB shootdowns/CPU  slides: vanilla {seed_v:,.0f}, luf {seed_l:,.0f} " \
           f"({100 * (seed_l / seed_v - 1):+.1f}%);  emu: vanilla {ipis_v / v['cpus']:,.1f}"
    if l_run:
        ipis_l = sum(l_run["per_cpu"]["tlb_shootdowns"])
        line += f", luf {ipis_l / l_run['cpus']:,.1f}"
        if ipis_v:
            line += f" ({100 * (ipis_l / ipis_v - 1):+.1f}%)"
    rows.append(line)
    for name, key, sk in (("dTLB-load-misses", "dtlb_load_misses", "dTLB_load_misses"),
                          ("dTLB-store-misses", "dtlb_store_misses", "dTLB_store_misses"),
                          ("iTLB-load-misses", "itlb_load_misses", "iTLB_load_misses")):
        line = f"{name:<18}  slides: {100 * (sl[sk] / sv[sk] - 1):+.1f}%"
        if l_run and sum(v["per_cpu"][key]):
            ratio = sum(l_run["per_cpu"][key]) / sum(v["per_cpu"][key])
            line += f";  emu: {100 * (ratio - 1):+.1f}%"
        rows.append(line)
    ratio = mean(sl["llama_total_time_ms"]) / mean(sv["llama_total_time_ms"])
    line = f"runtime per run     slides: {100 * (ratio - 1):+.1f}%"
    if l_run and v["runtime_ns"]:
        line += f";  emu: {100 * (l_run['runtime_ns'] / v['runtime_ns'] - 1):+.1f}%"
    rows.append(line)
    return "\n".join(rows)
