"""bench/benchmark.py's pure parts: rows from a results document, the table, the JSON
shape of issue 10 item 7. No MPI: the documents are made up."""

import importlib.util
import json

from conftest import ROOT

spec = importlib.util.spec_from_file_location("benchmark", ROOT / "bench" / "benchmark.py")
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)

KEYS = ["ranks", "job_wall_s", "startup_s", "startup_floor_s", "windows", "windows_per_s",
        "floor_windows_per_s", "accesses_per_s", "sim_ns_per_s", "rss_max_mb", "rss_mean_mb"]


def run(wall: float, windows: int, accesses: list[int], end_ns: int, rss: tuple,
        startup: float | None = None) -> dict:
    measured = {"windows": windows, "peak_rss_mb_per_rank": {"max": rss[0], "mean": rss[1]}}
    if startup is not None:
        measured["startup_s"] = startup
    return {"wall_s": wall, "measured": measured, "per_cpu": {"accesses": accesses},
            "timeline": {"t_ns": [0, end_ns]}, "runtime_ns": end_ns - 1}


DOC = {"runs": [run(2.0, 100, [10, 20], 4000, (50.0, 40.0), startup=0.5),
                run(3.0, 150, [30, 40], 6000, (60.0, 45.0), startup=0.1)]}


def test_row_sums_both_runs_over_the_simulation_wall_time():
    row = bench.make_row(8, 7.5, DOC, 0.4, 300.0)
    assert row["windows"] == 250
    assert row["windows_per_s"] == 50.0                  # 250 windows / 5 s
    assert row["accesses_per_s"] == 20.0                 # 100 accesses / 5 s
    assert row["sim_ns_per_s"] == 2000.0                 # 10,000 ns / 5 s
    assert row["startup_s"] == 0.5                       # the job's: the first run's
    assert (row["rss_max_mb"], row["rss_mean_mb"]) == (60.0, 45.0)
    assert row["job_wall_s"] == 7.5 and row["startup_floor_s"] == 0.4
    assert bench.product(row) == 7.5 * 300.0


def test_json_has_exactly_the_issue_fields():
    row = bench.make_row(8, 7.5, DOC, 0.4, 300.0)
    doc = json.loads(json.dumps(bench.document([row])))
    assert list(doc) == ["rows"]
    assert list(doc["rows"][0]) == KEYS
    with_base = bench.document([row], [row], "abc")
    assert with_base["baseline"]["rev"] == "abc" and list(with_base["baseline"]["rows"][0]) == KEYS


def test_table_one_line_per_row_and_baseline_beside_it():
    old = {"runs": [run(2.0, 100, [10, 20], 4000, (50.0, 40.0))]}   # no startup_s field
    rows = [bench.make_row(n, 7.5, DOC, 0.4, 300.0) for n in (8, 128)]
    base = [bench.make_row(n, 9.0, old, 0.4, 300.0) for n in (8, 128)]
    plain = bench.table(rows).splitlines()
    assert len(plain) == 3 and "job s x floor win/s" in plain[0]
    assert plain[1].split()[0] == "8" and plain[2].split()[0] == "128"
    assert plain[1].split()[-1] == "2250"                # 7.5 s x 300 windows/s
    side = bench.table(rows, base, "0123456789abcdef").splitlines()
    assert [line.split()[0] for line in side[1:]] == ["this", "0123456789"] * 2
    assert side[2].split()[3] == "-"                     # the old file has no start-up
    assert len({len(line) for line in side}) == 1        # columns line up
