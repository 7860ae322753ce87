"""Benchmark: wall time, simulated events per wall second, windows per second, MPI
messages per second and peak RSS per rank for the default scenario at -n 8 and -n 128,
beside the bare window-synchronisation floor (../shared/bench/sync_floor.py shm).

    python bench/benchmark.py [--ranks 8,128] [--policy vanilla] [--floor PATH]

Speed and memory are measured here, not asserted in tests. Each emu run uses one policy
(default vanilla); windows per second is compared with the floor at the same rank count.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def mpiexec() -> str:
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else "mpiexec"


def run(cmd: list[str], timeout: int) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    if proc.returncode != 0:
        sys.exit(f"benchmark: failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return proc.stdout


def emu_run(ranks: int, policy: str, scenario: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.json")
        t0 = time.perf_counter()
        run([mpiexec(), "-n", str(ranks), sys.executable, "-m", "emu", "run", "--policy", policy,
             "--scenario", scenario, "--json", out, "--quiet"], timeout=1800)
        job_wall = time.perf_counter() - t0
        doc = json.load(open(out))
    r = doc["runs"][0]
    return {"ranks": ranks, "job_wall_s": job_wall, "wall_s": r["wall_s"],
            "windows": r["measured"]["windows"], "windows_per_s": r["measured"]["windows_per_s"],
            "events_per_s": r["measured"]["events_per_s"],
            "mpi_messages_per_s": r["comm"]["mpi_messages"] / r["wall_s"],
            "rss_max": r["measured"]["peak_rss_mb_per_rank"]["max"],
            "rss_mean": r["measured"]["peak_rss_mb_per_rank"]["mean"]}


def sync_floor(ranks: int, windows: int, floor: Path) -> float:
    out = run([mpiexec(), "-n", str(ranks), sys.executable, str(floor), str(windows), "shm"],
              timeout=900)
    m = re.search(r"([\d.]+) windows/s", out)
    if not m:
        sys.exit(f"benchmark: unexpected sync_floor output: {out!r}")
    return float(m.group(1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ranks", default="8,128")
    ap.add_argument("--policy", default="vanilla")
    ap.add_argument("--scenario", default="llama-tiering")
    ap.add_argument("--floor", default=str(ROOT.parent / "shared" / "bench" / "sync_floor.py"))
    args = ap.parse_args()
    floor = Path(args.floor)
    print(f"emu benchmark: scenario {args.scenario}, policy {args.policy}, "
          f"{os.cpu_count()} cores")
    print(f"{'ranks':>5} {'wall s':>8} {'job s':>7} {'windows':>8} {'win/s':>7} {'events/s':>10} "
          f"{'MPI msg/s':>10} {'RSS max MB':>10} {'RSS mean MB':>11} {'floor win/s':>11} {'ratio':>6}")
    for ranks in [int(x) for x in args.ranks.split(",")]:
        r = emu_run(ranks, args.policy, args.scenario)
        f = sync_floor(ranks, 400, floor) if floor.exists() else float("nan")
        print(f"{ranks:>5} {r['wall_s']:>8.2f} {r['job_wall_s']:>7.1f} {r['windows']:>8} "
              f"{r['windows_per_s']:>7.1f} {r['events_per_s']:>10.0f} "
              f"{r['mpi_messages_per_s']:>10.0f} {r['rss_max']:>10.1f} {r['rss_mean']:>11.1f} "
              f"{f:>11.1f} {r['windows_per_s'] / f:>6.2f}", flush=True)
    if not floor.exists():
        print(f"(no floor: {floor} not found)")


if __name__ == "__main__":
    main()
