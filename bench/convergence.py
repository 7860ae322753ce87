"""Convergence: how far the window (`--quantum-ns`) moves the simulated answer.

    python bench/convergence.py [--ranks 4] [--quanta 10000,2000,500] [--seeds 2,3]
                                [--scenarios llama-tiering,reclaim,migrate] [--json PATH]
                                [--perturb [--perturb-costs a,b,...]] [--jobs 2]

Runs each scenario of issue 7's matrix (llama-tiering reduced to 16 CPUs, 5 threads per
model and 6 tokens; reclaim on 4 CPUs; migrate on 8 CPUs) with vanilla and luf at every quantum,
and prints each metric beside its value at the finest quantum, with the deviation and
whether it is within the tolerance (runtime 2%, counts 5%). `--seeds` also runs the
finest quantum with other seeds: how far the seed alone moves the same numbers, the
noise a deviation should be read against. Results are deterministic for a given
quantum, so one run per cell is enough. It takes about 10 minutes on 2 cores.
`--mean-seeds 1,2,3,4,5` runs every quantum with each of those seeds and compares the
means: where a count moves with the seed as much as with the quantum (a chaotic
system), the question is whether its expected value depends on the window.
`--perturb` does the same for scenarios the seed does not move (reclaim's threads read
in sequence): besides each seed's run, four more with one assumed cost a nanosecond
off (page_walk_ns and dram_access_ns, each +1 and -1). Such a change moves reclaim's
IPIs and allocstall by as much as the window does, so a single run per cell cannot
tell the window's bias from the trajectory's sensitivity; the cells are the means, and
each line ends with the members' relative standard deviation at the finest quantum.
`--perturb-costs` names the costs perturbed (default the two above): with k of them the
ensemble has up to 2k + 1 members, and a mean's standard error shrinks as its square
root. A member whose results equal the unperturbed run's at every quantum (a cost the
scenario never pays) is that run again and is left out of the means.
`--jobs N` runs N jobs at a time (with `--ranks 1`, one per core).
"""

import argparse
import itertools
import json
import statistics
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmark import ROOT, mpiexec, timed

sys.path.insert(0, str(ROOT))       # this tree's emu, the one its runs import (cwd ROOT)
from emu.scenario.load import load_scenario  # noqa: E402

SCENARIOS = {
    "llama-tiering": ["--cpus", "16"] + [
        arg for i in range(3) for arg in ("--set", f"process.{i}.threads.0.count=5",
                                          "--set", f"process.{i}.threads.0.repeat=6")],
    "reclaim": ["--cpus", "4"],              # its CPUs, whatever --ranks (default one per rank)
    "migrate": ["--cpus", "8"],
}
# (name, tolerance, value from a run of the results JSON)
METRICS = (
    ("runtime_ns", 0.02, lambda r: r["runtime_ns"]),
    ("IPIs", 0.05, lambda r: sum(r["per_cpu"]["tlb_shootdowns"])),
    ("nr_tlb_remote_flush", 0.05, lambda r: r["vmstat"]["nr_tlb_remote_flush"]),
    ("dTLB-load-misses", 0.05, lambda r: sum(r["per_cpu"]["dtlb_load_misses"])),
    ("dTLB-store-misses", 0.05, lambda r: sum(r["per_cpu"]["dtlb_store_misses"])),
    ("iTLB-load-misses", 0.05, lambda r: sum(r["per_cpu"]["itlb_load_misses"])),
    ("allocstall", 0.05, lambda r: r["vmstat"]["allocstall"]),
)


PERTURBED = ("page_walk_ns", "dram_access_ns")   # assumed costs (scenario/defaults.py)


def perturbations(scenario: str, keys=PERTURBED) -> list[list[str]]:
    """`--set` arguments of the ensemble's members: as it is, and each of the scenario's
    costs `keys` 1 ns up and 1 ns down."""
    cost = load_scenario(scenario, [])["cost"]
    for key in keys:
        if key not in cost:
            sys.exit(f"convergence: --perturb-costs: no cost named {key!r}")
    return [[]] + [["--set", f"cost.{key}={cost[key] + d}"] for key in keys
                   for d in (1, -1)]


def run(ranks: int, scenario: str, quantum: int, seed: int, out: Path,
        sets: list[str] = ()) -> dict:
    """{policy: {metric: value}} of one `compare` job (plus its windows)."""
    cmd = [mpiexec(), "-n", str(ranks), sys.executable, "-m", "emu", "compare",
           "--scenario", scenario, "--policies", "vanilla,luf", "--quantum-ns", str(quantum),
           "--seed", str(seed), "--json", str(out), "--quiet", *SCENARIOS[scenario], *sets]
    timed(cmd, ROOT, 3600)
    runs = json.loads(out.read_text())["runs"]
    return {r["policy"]: {**{m: get(r) for m, _, get in METRICS},
                          "windows": r["measured"]["windows"]} for r in runs}


def mean(results: list[dict]) -> dict:
    """{policy: {metric: mean over the runs}} (the value itself for one run)."""
    if len(results) == 1:
        return results[0]
    return {policy: {m: sum(r[policy][m] for r in results) / len(results)
                     for m in results[0][policy]} for policy in results[0]}


def distinct(runs_q: dict, per_seed: int) -> dict:
    """{quantum: runs} without the members that repeat their seed's unperturbed run (its
    first member) at every quantum."""
    def same(i: int) -> bool:
        return all(rs[i] == rs[i - i % per_seed] for rs in runs_q.values())
    keep = [i for i in range(len(next(iter(runs_q.values())))) if i % per_seed == 0
            or not same(i)]
    return {q: [rs[i] for i in keep] for q, rs in runs_q.items()}


def relative_sd(results: list[dict], policy: str, metric: str) -> float | None:
    """The runs' standard deviation of `metric` over their mean (None for one run)."""
    values = [r[policy][metric] for r in results]
    if len(values) < 2 or not statistics.mean(values):
        return None
    return statistics.stdev(values) / statistics.mean(values)


def number(v: float) -> str:
    return f"{v:,}" if isinstance(v, int) else f"{v:,.1f}"


def deviation(value: float, ref: float) -> float:
    return (value - ref) / ref if ref else (0.0 if value == ref else float("inf"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ranks", type=int, default=4)
    ap.add_argument("--quanta", default="10000,2000,500", help="the last is the reference")
    ap.add_argument("--seeds", default="", help="other seeds, run at the reference quantum")
    ap.add_argument("--mean-seeds", default="1",
                    help="seeds run at every quantum; each cell is their mean")
    ap.add_argument("--perturb", action="store_true",
                    help="each cell the mean of a 1 ns perturbation ensemble (above)")
    ap.add_argument("--perturb-costs", default=",".join(PERTURBED),
                    help="the costs the ensemble perturbs")
    ap.add_argument("--jobs", type=int, default=1, help="jobs run at a time")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS))
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    quanta = [int(q) for q in args.quanta.split(",")]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    mean_seeds = [int(s) for s in args.mean_seeds.split(",")]
    table = []
    costs = args.perturb_costs.split(",")
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(args.jobs) as pool:
        jobs = itertools.count()         # each job its own results file

        def submit(scenario: str, quantum: int, seed: int, sets: list[str] = ()):
            return pool.submit(run, args.ranks, scenario, quantum, seed,
                               Path(tmp) / f"{next(jobs)}.json", sets)

        for scenario in args.scenarios.split(","):
            members = [(seed, sets) for seed in mean_seeds
                       for sets in (perturbations(scenario, costs) if args.perturb else [[]])]
            runs_q = {q: [submit(scenario, q, seed, sets) for seed, sets in members]
                      for q in quanta}
            runs_q = {q: [f.result() for f in fs] for q, fs in runs_q.items()}
            runs_q = distinct(runs_q, len(members) // len(mean_seeds))
            by_q = {q: mean(rs) for q, rs in runs_q.items()}
            by_seed = {s: submit(scenario, quanta[-1], s) for s in seeds}
            by_seed = {s: f.result() for s, f in by_seed.items()}
            for policy in by_q[quanta[-1]]:
                ref = by_q[quanta[-1]][policy]
                for metric, tol, _ in METRICS:
                    devs = [deviation(by_q[q][policy][metric], ref[metric]) for q in quanta]
                    spread = [deviation(by_seed[s][policy][metric], ref[metric]) for s in seeds]
                    table.append({"scenario": scenario, "policy": policy, "metric": metric,
                                  "values": [by_q[q][policy][metric] for q in quanta],
                                  "max_deviation": max(abs(d) for d in devs),
                                  "within": all(abs(d) <= tol for d in devs),
                                  "seed_values": [by_seed[s][policy][metric] for s in seeds],
                                  "seed_max_deviation": max((abs(d) for d in spread),
                                                            default=None),
                                  "members": len(runs_q[quanta[-1]]),
                                  "members_sd": relative_sd(runs_q[quanta[-1]], policy,
                                                            metric)})
                table.append({"scenario": scenario, "policy": policy, "metric": "windows",
                              "values": [by_q[q][policy]["windows"] for q in quanta]})
    print(f"quanta (ns): {', '.join(map(str, quanta))}; reference {quanta[-1]}"
          + (f"; each the mean of seeds {args.mean_seeds}" if len(mean_seeds) > 1 else "")
          + (f"; each the mean of a 1 ns perturbation ensemble of up to {2 * len(costs) + 1}"
             f" ({args.perturb_costs})" if args.perturb else "")
          + (f"; seeds {args.seeds} at the reference" if seeds else ""))
    for row in table:
        values = " / ".join(map(number, row["values"]))
        line = f"{row['scenario']:14} {row['policy']:8} {row['metric']:20} {values}"
        if "within" in row:
            line += f"  max {row['max_deviation']:.1%} {'ok' if row['within'] else 'NOT within'}"
            line += f"  ({row['members']} runs)" if row["members"] > 1 else ""
            if row["seed_values"]:
                line += f"  (seeds: {' / '.join(map(number, row['seed_values']))},"
                line += f" max {row['seed_max_deviation']:.1%})"
            if row["members_sd"] is not None:
                line += f"  sd {row['members_sd']:.1%}"
        print(line)
    if args.json:
        args.json.write_text(json.dumps({"quanta": quanta, "seeds": seeds,
                                         "mean_seeds": mean_seeds, "perturb": args.perturb,
                                         "perturb_costs": costs if args.perturb else [],
                                         "rows": table},
                                        indent=1) + "\n")


if __name__ == "__main__":
    main()
