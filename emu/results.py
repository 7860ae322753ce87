"""Assemble one run's results from every rank's part, and write results files.

Simulated figures (deterministic: the same for any rank count or machine load) are kept
apart from measured wall-clock figures: MEASURED lists the latter, so a comparison of
two runs can drop exactly those.
"""

import json
import os

from emu.latency import cdf, percentile, summarise

SCHEMA = "emu-results/1"
PER_CPU = ("tlb_shootdowns", "dtlb_load_misses", "dtlb_store_misses", "itlb_load_misses",
           "nr_tlb_remote_flush", "nr_tlb_remote_flush_received", "nr_tlb_local_flush_all",
           "nr_tlb_local_flush_one", "tlb_flush_on_switch", "page_faults",
           "context_switches", "accesses", "ipi_sent", "idle_ns", "ipi_handler_ns", "segv_skipped",
           "ipi_unneeded")
VMSTAT_TLB = ("nr_tlb_remote_flush", "nr_tlb_remote_flush_received", "nr_tlb_local_flush_all",
              "nr_tlb_local_flush_one")
# fields that depend on placement or the machine, not on the simulation
MEASURED = ("ranks", "wall_s", "measured", "comm.mpi_messages", "comm.mpi_bytes")


def assemble_run(sc: dict, policy: str, ncpus: int, ranks: int, parts: list[dict],
                 layout) -> dict:
    cpus, threads = {}, {}
    coord = None
    for part in parts:
        for cid, res in part["cpus"].items():
            cpus[int(cid)] = res
            threads.update({int(t): v for t, v in res["threads"].items()})
        coord = part["coordinator"] or coord
    initiator = coord["initiator"]          # counted where the shootdowns are sent
    per_cpu = {k: initiator[k] if k in initiator else [cpus[c]["stats"][k] for c in range(ncpus)]
               for k in PER_CPU}
    vmstat = {k: sum(per_cpu[k]) for k in VMSTAT_TLB}
    causes = {k: sum(cpus[c]["stats"][k] for c in range(ncpus))
              for k in ("miss_first_touch", "miss_flush_refill", "miss_hot_refill")}
    vmstat.update(coord["vmstat"])
    oracle = {"checked": 0, "violations": 0, "by_kind": {}, "first": []}
    for c in range(ncpus):
        o = cpus[c]["oracle"]
        oracle["checked"] += o["checked"]
        oracle["violations"] += o["violations"]
        for kind, n in o["by_kind"].items():
            oracle["by_kind"][kind] = oracle["by_kind"].get(kind, 0) + n
        oracle["first"] += o["first"]
    oracle["first"] = sorted(oracle["first"], key=lambda v: (v["time_ns"], v["cpu"]))[
        :sc["oracle"]["max_listed"]]
    processes = []
    for mm, name in enumerate(layout.mm_names):
        mine = [t for t in threads.values() if t["mm"] == mm and not t["daemon"]]
        exits = [t["exit_ns"] for t in mine]
        tags = {}
        for t in mine:
            for tag, times in t["tags"].items():
                tags[tag] = max(tags.get(tag, 0), len(times))
        processes.append({"name": name, "threads": len(mine),
                          "runtime_ns": max(exits) if exits and min(exits) >= 0 else -1,
                          "finished": bool(exits) and min(exits) >= 0, "tags": tags})
    runtime = max([p["runtime_ns"] for p in processes] + [0])
    end = max(part["end_ns"] for part in parts)
    thread_ns = sum(t["exit_ns"] if t["exit_ns"] >= 0 else end for t in threads.values()
                    if not t["daemon"])
    latencies = sorted(x for part in parts for x in part["latencies_us"])
    eng = [part["engine"] for part in parts]
    wall = max(part["wall_s"] for part in parts)
    windows = eng[0]["windows"]
    ran = [e["windows"] for e in eng if e["windows"]]      # dormant ranks run none
    events = sum(e["events"] for e in eng) + sum(per_cpu["accesses"])
    rss = [part["rss_kb"] / 1024 for part in parts]
    startup = [part["startup_s"] for part in parts if part.get("startup_s") is not None]
    sources = {s: {"flushes": coord["flushes_by_source"].get(s, 0),
                   "ipis": coord["ipis_by_source"].get(s, 0)}
               for s in coord["flushes_by_source"]
               if coord["flushes_by_source"].get(s) or coord["ipis_by_source"].get(s)}
    return {
        "policy": policy,
        "scenario": sc["scenario"]["name"],
        "seed": sc["scenario"]["seed"],
        "cpus": ncpus,
        "ranks": ranks,
        "quantum_ns": sc["scenario"]["quantum_ns"],
        "runtime_ns": runtime,
        "iterations": sum(t["iterations"] for t in threads.values()),   # count steps run
        "tlb_miss_causes": {            # page walks (dTLB + iTLB misses) by why they walk
            "first_touch_or_capacity": causes["miss_first_touch"],
            "refill_after_flush": causes["miss_flush_refill"] + causes["miss_hot_refill"],
            "hot_set_refill": causes["miss_hot_refill"],      # part of refill_after_flush
        },
        "processes": processes,
        "per_cpu": per_cpu,
        "vmstat": vmstat,
        "shootdowns_by_source": sources,
        "shootdown_latency_ns": summarise(coord["latency_ns"]),
        "shootdown_latency_cdf": cdf(coord["latency_ns"]),
        "wait_share": round(coord["user_wait_ns"] / thread_ns, 6) if thread_ns else 0.0,
        "policy_stats": coord["policy"],
        "unmap_ro_rw": coord["unmap_ro_rw"],
        "kernel_inputs_late": coord["inputs_late"],
        "oracle": oracle,
        "comm": {
            "ipi_messages": sum(per_cpu["ipi_sent"]),
            "mpi_messages": sum(e["mpi_messages"] for e in eng),
            "mpi_bytes": sum(e["mpi_bytes"] for e in eng),
        },
        "watermarks": coord["watermarks"],
        "timeline": coord["timeline"],
        "cost_model": dict(sc["cost"]),
        "wall_s": round(wall, 3),
        "measured": {
            "windows": windows,
            "windows_per_s": round(windows / wall, 1) if wall else 0.0,
            # windows each non-dormant rank ran; it slept through the others (sync.py)
            "rank_windows": {"min": min(ran), "mean": round(sum(ran) / len(ran), 1)},
            # wall seconds to the first window from a rank's start (the longest)
            "startup_s": round(max(startup), 3) if startup else 0.0,
            "events": events,
            "events_per_s": round(events / wall, 1) if wall else 0.0,
            "peak_rss_mb_per_rank": {"max": round(max(rss), 1),
                                     "mean": round(sum(rss) / len(rss), 1)},
            # wall-clock one-way latency of the IPI/ack messages, send to receive: a
            # property of the host, the placement and emu's windows, not of the model
            "mpi_ipi_wall_latency_us": {"p50": round(percentile(latencies, 0.5), 3),
                                        "p99": round(percentile(latencies, 0.99), 3),
                                        "max": round(latencies[-1], 3) if latencies else 0.0,
                                        "samples": len(latencies)},
        },
    }


def results_document(runs: list[dict], argv: list[str]) -> dict:
    return {"schema": SCHEMA, "command": argv, "measured_fields": list(MEASURED), "runs": runs}


def write_json_atomic(path: str, doc: dict) -> None:
    """`doc` as JSON, written atomically (write_atomic)."""
    write_atomic(path, (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode())


def write_atomic(path: str, *parts: bytes) -> None:
    """Write `parts`, one after the other, to a temporary file beside the target, flush
    it to disk, then rename it over the target: a reader (or a run killed at any point)
    sees the previous complete file or the new one, never a part. The temporary file
    goes if writing fails."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)   # mode from umask
    try:
        with os.fdopen(fd, "wb") as f:
            for data in parts:
                f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def simulated_view(run: dict) -> dict:
    """The run without its measured fields (what determinism compares)."""
    out = json.loads(json.dumps(run))
    for field in MEASURED:
        node, *rest = field.split(".")
        if not rest:
            out.pop(node, None)
        else:
            out.get(node, {}).pop(rest[0], None)
    return out
