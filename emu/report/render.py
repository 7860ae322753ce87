"""Text renderings of a results document. Simulated figures first; measured wall-clock
figures in their own section at the end of the report."""

import csv
import io

from emu.report.seed import seed_comparison

NEEDS = {"latency": ("shootdown_latency_ns",)}    # run fields older results files lack
LATENCY = ("count", "p50", "p99", "max")


def _pct(new: float, old: float) -> str:
    if not old:
        return "n/a"
    return f"{100.0 * (new - old) / old:+.1f}%"


def interrupts(run: dict) -> str:
    """The TLB row as /proc/interrupts prints it."""
    row = run["per_cpu"]["tlb_shootdowns"]
    head = "".join(f"{'CPU' + str(i):>11}" for i in range(len(row)))
    vals = "".join(f"{v:>11}" for v in row)
    return f"     {head}\n TLB:{vals}   TLB shootdowns\n"


def perf(run: dict) -> str:
    pc = run["per_cpu"]
    lines = [f" Performance counter stats for 'system wide' ({run['policy']}):", ""]
    for name, key in (("dTLB-load-misses", "dtlb_load_misses"),
                      ("dTLB-store-misses", "dtlb_store_misses"),
                      ("iTLB-load-misses", "itlb_load_misses")):
        lines.append(f"{sum(pc[key]):>20,}      {name}")
    lines.append(f"\n{run['runtime_ns'] / 1e9:>20.9f} seconds time elapsed (simulated)")
    return "\n".join(lines) + "\n"


def vmstat(run: dict) -> str:
    return "".join(f"{k} {v}\n" for k, v in sorted(run["vmstat"].items()))


def to_csv(doc: dict) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["policy", "scenario", "cpu", "tlb_shootdowns", "dtlb_load_misses",
                "dtlb_store_misses", "itlb_load_misses", "nr_tlb_local_flush_all",
                "nr_tlb_local_flush_one"])
    for run in doc["runs"]:
        pc = run["per_cpu"]
        for c in range(run["cpus"]):
            w.writerow([run["policy"], run["scenario"], c, pc["tlb_shootdowns"][c],
                        pc["dtlb_load_misses"][c], pc["dtlb_store_misses"][c],
                        pc["itlb_load_misses"][c], pc["nr_tlb_local_flush_all"][c],
                        pc["nr_tlb_local_flush_one"][c]])
    return out.getvalue()


def latency(doc: dict) -> str:
    """Shootdown latency per flush source (simulated ns), the runs side by side."""
    runs = doc["runs"]
    sources = sorted({s for r in runs for s in r["shootdown_latency_ns"] if s != "all"})
    rows = [["source"] + [f"{r['policy']} {c}" if i == 0 else c for r in runs
                          for i, c in enumerate(LATENCY + ("mean",))]]
    for source in sources + ["all"]:
        row = [source]
        for r in runs:
            v = r["shootdown_latency_ns"].get(source)
            if not v or not v["count"]:
                row += ["-"] * (len(LATENCY) + 1)
                continue
            row += [f"{v[c]:,}" for c in LATENCY] + [f"{v['total'] / v['count']:,.0f}"]
        rows.append(row)
    out = ["== Shootdown latency by flush source (simulated ns) ==", _table(rows)]
    if all("wait_share" in r for r in runs):
        out.append("time waiting on shootdowns (share of all threads' runtime): " +
                   ", ".join(f"{r['policy']} {100 * r['wait_share']:.2f}%" for r in runs) + "\n")
    return "\n".join(out)


def _row_summary(row: list[int]) -> str:
    return f"total {sum(row):,}  min {min(row):,}  max {max(row):,}  mean {sum(row) / len(row):,.1f}"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in
                               enumerate(zip(r, widths, strict=True))) for r in rows) + "\n"


def report(doc: dict) -> str:
    runs = doc["runs"]
    base = runs[0]
    out = [f"emu: scenario '{base['scenario']}', {base['cpus']} CPUs, seed {base['seed']}, "
           f"quantum {base['quantum_ns']} ns, policies {', '.join(r['policy'] for r in runs)}",
           ""]
    out.append("== TLB shootdowns received per CPU (/proc/interrupts TLB row) ==")
    for run in runs:
        out.append(f"-- {run['policy']}: {_row_summary(run['per_cpu']['tlb_shootdowns'])}")
        out.append(interrupts(run))
    metrics = [("TLB shootdowns (sum of TLB row)", lambda r: sum(r["per_cpu"]["tlb_shootdowns"])),
               ("nr_tlb_remote_flush", lambda r: r["vmstat"]["nr_tlb_remote_flush"]),
               ("nr_tlb_remote_flush_received",
                lambda r: r["vmstat"]["nr_tlb_remote_flush_received"]),
               ("nr_tlb_local_flush_all", lambda r: r["vmstat"]["nr_tlb_local_flush_all"]),
               ("nr_tlb_local_flush_one", lambda r: r["vmstat"]["nr_tlb_local_flush_one"]),
               ("dTLB-load-misses", lambda r: sum(r["per_cpu"]["dtlb_load_misses"])),
               ("dTLB-store-misses", lambda r: sum(r["per_cpu"]["dtlb_store_misses"])),
               ("iTLB-load-misses", lambda r: sum(r["per_cpu"]["itlb_load_misses"])),
               ("runtime (simulated ms)", lambda r: round(r["runtime_ns"] / 1e6, 3)),
               ("IPI messages (simulated)", lambda r: r["comm"]["ipi_messages"]),
               ("oracle checks", lambda r: r["oracle"]["checked"]),
               ("oracle violations", lambda r: r["oracle"]["violations"])]
    if all("ipi_unneeded" in r["per_cpu"] for r in runs):      # absent from older files
        metrics.insert(1, ("IPIs the kernel would not send (not taken)",
                           lambda r: sum(r["per_cpu"]["ipi_unneeded"])))
    head = ["simulated"] + [r["policy"] for r in runs] + \
        [f"{r['policy']} vs {base['policy']}" for r in runs[1:]]
    rows = [head]
    for name, fn in metrics:
        vals = [fn(r) for r in runs]
        rows.append([name] + [f"{v:,}" for v in vals] + [_pct(v, vals[0]) for v in vals[1:]])
    out += ["== Totals ==", _table(rows)]
    out.append("== Where shootdowns come from (flush requests with remote targets / IPIs) ==")
    for run in runs:
        src = run["shootdowns_by_source"]
        text = ", ".join(f"{s} {v['flushes']:,}/{v['ipis']:,}" for s, v in sorted(src.items()))
        out.append(f"-- {run['policy']}: {text or 'none'}")
    out.append("")
    if all("shootdown_latency_ns" in r for r in runs):     # absent from older files
        out.append(latency({"runs": runs}))
    out.append("== Processes (runtime, simulated) ==")
    for i, proc in enumerate(base["processes"]):
        cells = []
        for run in runs:
            p = run["processes"][i]
            tok = p["tags"].get("token")
            per = f" / {tok} tokens" if tok else ""
            cells.append(f"{run['policy']} total time = {p['runtime_ns'] / 1e6:,.3f} ms{per}"
                         + ("" if p["finished"] else " (not finished)"))
        out.append(f"{proc['name']}: " + "; ".join(cells))
    out.append("")
    out.append("== vmstat ==")
    keys = sorted(k for k in base["vmstat"] if any(r["vmstat"].get(k) for r in runs))
    rows = [["counter"] + [r["policy"] for r in runs]] + \
        [[k] + [f"{r['vmstat'].get(k, 0):,}" for r in runs] for k in keys]
    out.append(_table(rows))
    for run in runs:
        ro_rw = run.get("unmap_ro_rw")
        if ro_rw:
            out.append(f"{run['policy']} folios unmapped by batched reclaim/migration "
                       f"(the slides' RO:RW on unmapping): all PTEs read-only {ro_rw['ro']:,}, "
                       f"some writable {ro_rw['rw']:,}")
        if run["policy_stats"]:
            stats = ", ".join(f"{k} {v:,}" for k, v in sorted(run["policy_stats"].items()))
            out.append(f"{run['policy']} policy counters: {stats}")
    out.append("")
    out.append("== Safety oracle ==")
    for run in runs:
        o = run["oracle"]
        verdict = "SAFE" if not o["violations"] else "VIOLATIONS"
        kinds = ", ".join(f"{k} {v}" for k, v in o["by_kind"].items() if v)
        hooks = ", ".join(f"{k[6:]} {v:,}" for k, v in sorted(run["policy_stats"].items())
                          if k.startswith("flush_") and v)
        out.append(f"-- {run['policy']}: {verdict}: {o['checked']:,} accesses checked, "
                   f"{o['violations']:,} violations{(' (' + kinds + ')') if kinds else ''}"
                   + (f"; deferred flushes done by hook: {hooks}" if hooks else ""))
        for v in o["first"][:5]:
            out.append(f"   {v['kind']}: CPU {v['cpu']} at {v['time_ns']} ns, mm {v['mm']}, "
                       f"vpage {v['vpage']}, pfn {v['pfn']}")
    seed = seed_comparison(runs)
    if seed:
        out += ["", seed]
    out.append("")
    out.append("== Cost model (ns unless named otherwise) ==")
    out.append(", ".join(f"{k}={v}" for k, v in base["cost_model"].items()))
    out.append("")
    out.append("== Measured (wall clock; depends on the machine and placement) ==")
    for run in runs:
        m, c = run["measured"], run["comm"]
        lat = m.get("mpi_ipi_wall_latency_us") or c["ipi_latency_us"]   # older files: comm
        ran = m.get("rank_windows")                                     # older files: none
        ran = f", a non-dormant rank ran {ran['mean']:,} on average" if ran else ""
        out.append(f"-- {run['policy']}: {run['ranks']} ranks, wall {run['wall_s']} s, "
                   f"{m['windows']:,} windows ({m['windows_per_s']:,}/s{ran}), "
                   f"{m['events_per_s']:,.0f} events/s, MPI {c['mpi_messages']:,} messages "
                   f"{c['mpi_bytes']:,} bytes, wall-clock one-way latency of IPI/ack "
                   f"messages (host and windows, not the model) p50 {lat['p50']} us "
                   f"p99 {lat['p99']} us max {lat['max']} us, peak RSS/rank "
                   f"{m['peak_rss_mb_per_rank']['max']} MB")
    return "\n".join(out) + "\n"


def render(doc: dict, fmt: str) -> str:
    if fmt == "report":
        return report(doc)
    if fmt == "csv":
        return to_csv(doc)
    if fmt == "latency":
        return latency(doc)
    fn = {"interrupts": interrupts, "perf": perf, "vmstat": vmstat}[fmt]
    return "".join(f"# {r['policy']} ({r['scenario']})\n{fn(r)}" for r in doc["runs"])
