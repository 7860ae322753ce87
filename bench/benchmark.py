"""Benchmark: the default job exactly as a user runs it, beside the machine's floors.

    python bench/benchmark.py [--ranks 8,128] [--json PATH] [--baseline REV]
                              [--scenario S] [--policies P] [--cpus N] [--set K=V ...]

For each rank count it times `mpiexec -n N python -m emu --json F --quiet` (the default
comparison, vanilla then luf on llama-tiering, unless options are given), start-up
included (emu byte-compiled first, like the floor's installed packages), and reads
from F the start-up to the first window (runs[0].measured.startup_s), windows,
simulated TLB accesses and simulated time. Beside it, on the same machine in the same
run: the bare start-up floor (`mpiexec -n N python -c "import numpy, mpi4py.MPI"`,
timed; each rank also reports its peak RSS, printed under the table) and the bare
synchronisation floor (../shared/bench/sync_floor.py 400 shm). `--baseline REV` runs the
same jobs on another commit through a temporary git worktree (same venv; run from that
worktree's root so its code is imported) and prints both, with the job seconds x floor
windows/s product of issue 10.

Rates are over the simulation's wall time (the sum of the runs' wall_s); job_wall_s is
the whole job. Speed and memory are measured here, not asserted in tests.
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLOOR = ROOT.parent / "shared" / "bench" / "sync_floor.py"
FLOOR_WINDOWS = 400
FIELDS = ("ranks", "job_wall_s", "startup_s", "startup_floor_s", "windows", "windows_per_s",
          "floor_windows_per_s", "accesses_per_s", "sim_ns_per_s", "rss_max_mb",
          "rss_mean_mb")
# (header, row field or None for the product, format spec); width is the header's
COLUMNS = (("ranks", "ranks", "d"), ("job s", "job_wall_s", ".1f"),
           ("start s", "startup_s", ".2f"), ("floor s", "startup_floor_s", ".2f"),
           ("windows", "windows", "d"), ("win/s", "windows_per_s", ".1f"),
           ("floor win/s", "floor_windows_per_s", ".1f"),
           ("accesses/s", "accesses_per_s", ".0f"), ("sim ns/s", "sim_ns_per_s", ".0f"),
           ("RSS max MB", "rss_max_mb", ".1f"), ("RSS mean MB", "rss_mean_mb", ".1f"),
           ("job s x floor win/s", None, ".0f"))
WIDTH = 10


def mpiexec() -> str:
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else "mpiexec"


def timed(cmd: list[str], cwd: Path, timeout: int) -> tuple[float, str]:
    """(wall seconds, stdout) of `cmd`; exits with its stderr if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"benchmark: failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


def emu_args(args: argparse.Namespace) -> list[str]:
    """The options given to `python -m emu` (none for the default job)."""
    out = []
    for opt in ("scenario", "policies", "cpus"):
        if getattr(args, opt) is not None:
            out += [f"--{opt}", str(getattr(args, opt))]
    for kv in args.set:
        out += ["--set", kv]
    return out


def emu_job(ranks: int, extra: list[str], cwd: Path, keep: str | None = None
            ) -> tuple[float, dict]:
    """(job wall seconds, results document) of one `python -m emu` job run from `cwd`;
    the results file is also copied to `keep` if given."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.json")
        wall, _ = timed([mpiexec(), "-n", str(ranks), sys.executable, "-m", "emu", *extra,
                         "--json", out, "--quiet"], cwd, timeout=3600)
        if keep:
            shutil.copyfile(out, keep)
        with open(out) as f:
            return wall, json.load(f)


def byte_compile(tree: Path) -> None:
    """Compile the tree's emu package to bytecode first, as pip does at install for the
    floor's numpy and mpi4py and as a user's first run does: without it (a fresh tree, or
    PYTHONDONTWRITEBYTECODE set) every rank compiles every module it imports, each run."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", "emu"], cwd=tree, check=True,
                   stdout=subprocess.DEVNULL)


# the floor's ranks each end by writing their peak RSS (KiB) in one line
FLOOR_CODE = ("import numpy, mpi4py.MPI, os, resource; "
              "os.write(1, b'%d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")


def startup_floor(ranks: int) -> tuple[float, list[float]]:
    """(wall seconds, each rank's peak RSS in MB) of the bare start-up floor."""
    wall, out = timed([mpiexec(), "-n", str(ranks), sys.executable, "-c", FLOOR_CODE], ROOT,
                      timeout=900)
    return wall, [int(x) / 1024 for x in out.split()]


def floor_rss_line(ranks: int, rss: list[float]) -> str:
    """The bare floor's own peak RSS per rank, beside emu's RSS columns (not a row field:
    the table's fields are issue 10's)."""
    return (f"bare floor RSS per rank at {ranks} ranks: max {max(rss):.1f} MB, "
            f"mean {sum(rss) / len(rss):.1f} MB")


def sync_floor(ranks: int, floor: Path) -> float:
    _, out = timed([mpiexec(), "-n", str(ranks), sys.executable, str(floor),
                    str(FLOOR_WINDOWS), "shm"], ROOT, timeout=900)
    m = re.search(r"([\d.]+) windows/s", out)
    if not m:
        sys.exit(f"benchmark: unexpected sync_floor output: {out!r}")
    return float(m.group(1))


def sim_end_ns(run: dict) -> int:
    """The run's simulated span: its last window's end (the timeline's last point)."""
    t = run.get("timeline", {}).get("t_ns")
    return t[-1] if t else run["runtime_ns"]


def make_row(ranks: int, job_wall_s: float, doc: dict, startup_floor_s: float,
             floor_windows_per_s: float) -> dict:
    """One table row from a job's results document and the floors measured beside it."""
    runs = doc["runs"]
    sim_wall = sum(r["wall_s"] for r in runs)
    windows = sum(r["measured"]["windows"] for r in runs)
    accesses = sum(sum(r["per_cpu"]["accesses"]) for r in runs)
    rss = [r["measured"]["peak_rss_mb_per_rank"] for r in runs]
    return {
        "ranks": ranks,
        "job_wall_s": round(job_wall_s, 3),
        # a results file from before the field existed has none
        "startup_s": runs[0]["measured"].get("startup_s"),
        "startup_floor_s": round(startup_floor_s, 3),
        "windows": windows,
        "windows_per_s": round(windows / sim_wall, 1),
        "floor_windows_per_s": floor_windows_per_s,
        "accesses_per_s": round(accesses / sim_wall, 1),
        "sim_ns_per_s": round(sum(sim_end_ns(r) for r in runs) / sim_wall, 1),
        # ru_maxrss only grows, so the last run's figures are the job's
        "rss_max_mb": max(x["max"] for x in rss),
        "rss_mean_mb": max(x["mean"] for x in rss),
    }


def product(row: dict) -> float:
    """Issue 10's machine-independent job cost: job seconds x floor windows/s."""
    return row["job_wall_s"] * row["floor_windows_per_s"]


def cell(value, spec: str, width: int) -> str:
    return f"{'-':>{width}}" if value is None else f"{value:>{width}{spec}}"


def table(rows: list[dict], baseline: list[dict] | None = None, rev: str = "") -> str:
    """The one table: a line per rank count and, with a baseline, its line under each."""
    label = baseline is not None
    lines = [("code       " if label else "") +
             " ".join(f"{h:>{max(len(h), WIDTH)}}" for h, _, _ in COLUMNS)]
    for i, row in enumerate(rows):
        pairs = [("this", row)] + ([(rev[:10] or "baseline", baseline[i])] if label else [])
        for name, r in pairs:
            cells = [cell(product(r) if field is None else r[field], spec, max(len(h), WIDTH))
                     for h, field, spec in COLUMNS]
            lines.append((f"{name:<11}" if label else "") + " ".join(cells))
    return "\n".join(lines) + "\n"


def document(rows: list[dict], baseline: list[dict] | None = None, rev: str = "") -> dict:
    doc = {"rows": [{k: r[k] for k in FIELDS} for r in rows]}
    if baseline is not None:
        doc["baseline"] = {"rev": rev, "rows": [{k: r[k] for k in FIELDS} for r in baseline]}
    return doc


def baseline_tree(rev: str, tmp: str) -> Path:
    """A detached worktree of `rev` under `tmp`."""
    path = Path(tmp) / "baseline"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(path), rev], cwd=ROOT,
                   check=True)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ranks", default="8,128", help="comma-separated (default: %(default)s)")
    ap.add_argument("--json", metavar="PATH", help="also write the table as JSON")
    ap.add_argument("--baseline", metavar="REV", help="also measure this commit, side by side")
    ap.add_argument("--results-dir", metavar="DIR",
                    help="keep each job's results file there (emu-N.json, baseline-N.json)")
    ap.add_argument("--floor", default=str(FLOOR), help="sync_floor.py (default: %(default)s)")
    ap.add_argument("--scenario", help="passed to python -m emu (default: its own)")
    ap.add_argument("--policies", help="passed to python -m emu (default: its own)")
    ap.add_argument("--cpus", type=int, help="passed to python -m emu (default: one per rank)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="passed to python -m emu, e.g. process.0.threads.0.repeat=2")
    args = ap.parse_args()
    floor = Path(args.floor)
    if not floor.exists():
        sys.exit(f"benchmark: no sync floor at {floor} (--floor PATH)")
    extra = emu_args(args)
    print(f"emu benchmark: python -m emu {' '.join(extra)}".rstrip() +
          f"; {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}", flush=True)
    rows, base = [], [] if args.baseline else None
    if args.results_dir:
        os.makedirs(args.results_dir, exist_ok=True)

    def kept(name: str, ranks: int) -> str | None:
        return os.path.join(args.results_dir, f"{name}-{ranks}.json") if args.results_dir \
            else None

    rev, floor_rss = "", []
    with tempfile.TemporaryDirectory() as tmp:
        tree = None
        if args.baseline:
            rev = subprocess.run(["git", "rev-parse", args.baseline], cwd=ROOT, check=True,
                                 capture_output=True, text=True).stdout.strip()
            tree = baseline_tree(rev, tmp)
            byte_compile(tree)
        byte_compile(ROOT)
        try:
            for ranks in [int(x) for x in args.ranks.split(",")]:
                start_wall, rss = startup_floor(ranks)
                floor_rss.append(floor_rss_line(ranks, rss))
                floors = start_wall, sync_floor(ranks, floor)
                rows.append(make_row(ranks, *emu_job(ranks, extra, ROOT, kept("emu", ranks)),
                                     *floors))
                if tree is not None:
                    base.append(make_row(ranks, *emu_job(ranks, extra, tree,
                                                         kept("baseline", ranks)), *floors))
        finally:
            if tree is not None:
                subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT,
                               check=False)
    print(table(rows, base, rev), end="")
    print("\n".join(floor_rss))
    print(f"load at the end {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(document(rows, base, rev), f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
