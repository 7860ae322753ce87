"""--trace: the Chrome trace-event file (Perfetto, chrome://tracing). The MPI runs are
tiny (munmap-pair with 20 iterations, reclaim with small files); the recorder's
clipping, lanes and span parsing are checked without MPI."""

import json
from collections import defaultdict

import pytest
from conftest import run_emu, run_json

from emu.errors import EmuError
from emu.results import simulated_view
from emu.trace import INF, Recorder, TraceOptions, parse_span

PAIR = ("--scenario", "munmap-pair", "--set", "process.0.threads.0.repeat=20")
RECLAIM = ("--scenario", "reclaim", "--set=machine.dram_pages=1000",
           *[f"--set={key}" for i in range(3) for key in
             (f"file.{i}.pages=600", f"process.{i}.mappings.0.pages=600",
              f"process.{i}.threads.0.repeat=1")])
COST = {"ipi_latency_ns": 260, "ipi_per_target_ns": 65}


def _load(path) -> dict:
    doc = json.loads(path.read_text())
    assert isinstance(doc["traceEvents"], list) and doc["traceEvents"]
    return doc


def _by_pid(doc: dict) -> dict:
    """pid -> {"names": tid -> track name, "events": [...]}, metadata aside."""
    out = defaultdict(lambda: {"names": {}, "events": []})
    for e in doc["traceEvents"]:
        p = out[e["pid"]]
        if e["ph"] == "M" and e["name"] == "thread_name":
            p["names"][e["tid"]] = e["args"]["name"]
        elif e["ph"] != "M":
            p["events"].append(e)
    return out


def _ns(us: float) -> float:
    return us * 1000


def _check_run(proc: dict, run: dict) -> None:
    """Tracks, slices, flows and counters of one run's process against its results."""
    names, events = proc["names"], proc["events"]
    for cpu, n in enumerate(run["per_cpu"]["accesses"]):
        if n:
            assert f"CPU {cpu}" in names.values()
    slices = defaultdict(list)
    for e in events:
        if e["ph"] == "X":
            assert e["dur"] > 0
            slices[e["tid"]].append((_ns(e["ts"]), _ns(e["ts"] + e["dur"]), e["name"]))
    for tid, ss in slices.items():          # JSON slices of a track must nest: ours never overlap
        ss.sort()
        for a, b in zip(ss, ss[1:], strict=False):
            assert a[1] <= b[0] + 1e-6, (names[tid], a, b)
    handlers = [e for e in events if e["ph"] == "X" and e["name"] == "IPI handler"]
    assert len(handlers) == sum(run["per_cpu"]["tlb_shootdowns"]) > 0
    flows = defaultdict(dict)
    for e in events:
        if e["ph"] in "sf":
            assert e["ph"] not in flows[e["id"]]
            flows[e["id"]][e["ph"]] = e
            t = _ns(e["ts"])
            assert any(a < t < b for a, b, _ in slices[e["tid"]]), e   # bound to a slice
    ipi_flows = 0
    for fid, ends in flows.items():
        assert set(ends) == {"s", "f"}, ends
        assert ends["f"]["ts"] >= ends["s"]["ts"]
        target = (fid >> 1) & 4095
        if fid & 1:     # ack: from the target's handler back to the initiator's wait
            assert names[ends["s"]["tid"]].startswith(f"CPU {target} IPI handlers")
        else:
            assert names[ends["f"]["tid"]].startswith(f"CPU {target} IPI handlers")
            ipi_flows += 1
    assert ipi_flows == len(handlers)
    counters = {e["name"] for e in events if e["ph"] == "C"}
    assert {"free pages node 0", "LUF pending pages", "IPIs per 100 us"} <= counters
    ipis = sum(e["args"]["value"] for e in events if e["name"] == "IPIs per 100 us")
    assert ipis == sum(run["per_cpu"]["ipi_sent"])


def test_trace_of_a_compare_and_results_unchanged(tmp_path):
    """reclaim (kswapd, direct reclaim, LUF's take-off flushes): the file is valid and
    complete, and every simulated result is the same as without --trace."""
    trace = tmp_path / "t.json"
    plain = run_json(2, tmp_path, "compare", "--policies", "vanilla,luf", *RECLAIM)
    traced = run_json(2, tmp_path, "compare", "--policies", "vanilla,luf", *RECLAIM,
                      "--trace", str(trace))
    for a, b in zip(plain["runs"], traced["runs"], strict=True):
        assert json.dumps(simulated_view(a), sort_keys=True) == \
            json.dumps(simulated_view(b), sort_keys=True)
    doc = _load(trace)
    assert doc["otherData"]["truncated"] is False
    procs = _by_pid(doc)
    assert sorted(procs) == [1, 2]
    for pid, run in enumerate(traced["runs"], 1):
        _check_run(procs[pid], run)
    assert any(n.startswith("kernel threads") for n in procs[1]["names"].values())


def test_span_limits_the_timestamps(tmp_path):
    trace = tmp_path / "t.json"
    lo, hi = 40_000, 90_000
    run_emu(2, "run", *PAIR, "--trace", str(trace), "--trace-span", f"{lo}:{hi}", "--quiet")
    doc = _load(trace)
    assert doc["otherData"]["span_ns"] == [lo, hi] and not doc["otherData"]["truncated"]
    events = [e for e in doc["traceEvents"] if e["ph"] != "M"]
    assert {e["ph"] for e in events} >= {"X", "s", "f", "C"}
    for e in events:
        assert lo <= _ns(e["ts"]) + 1e-6 and _ns(e["ts"] + e.get("dur", 0)) <= hi + 1e-6, e


def test_cap_records_the_first_part_and_says_so(tmp_path):
    trace = tmp_path / "t.json"
    out = run_emu(2, "compare", "--policies", "vanilla,luf", *PAIR, "--trace", str(trace),
                  "--quiet", env={"EMU_TRACE_CAP_BYTES": "10000"})
    assert out.stderr.count("emu: trace of ") == 2 and "capped at 10000 bytes" in out.stderr
    doc = _load(trace)
    other = doc["otherData"]
    assert other["truncated"] is True and other["cap_bytes"] == 10000
    procs = _by_pid(doc)
    for run in other["runs"]:
        cut = run["recorded_until_ns"]
        assert run["truncated"] and 0 < cut < run["end_ns"]
        events = procs[run["pid"]]["events"]
        assert any(e["ph"] == "X" for e in events)
        for e in events:
            assert _ns(e["ts"] + e.get("dur", 0)) <= cut + 1e-6, e
        flows = defaultdict(set)
        for e in events:
            if e["ph"] in "sf":
                flows[e["id"]].add(e["ph"])
        assert all(ends == {"s", "f"} for ends in flows.values())


def test_bad_span_is_one_line_exit_2():
    out = run_emu(1, "run", *PAIR, "--cpus", "2", "--trace", "/dev/null", "--trace-span", "9:3",
                  check=False)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == ["emu: error: --trace-span needs 0 <= START < END, "
                                               "got '9:3'"]


# -- the recorder alone -----------------------------------------------------------------
def _events(rec: Recorder, cut: int = INF) -> list[dict]:
    return json.loads(b"[" + rec.encode_part(cut) + b"]")


class Proc:
    def __init__(self, cpu: int, tid: int, name: str = "user"):
        self.cpu, self.tid, self.name = cpu, tid, name


def test_parse_span():
    assert parse_span("1_000:2000") == (1000, 2000)
    for bad in ("5", "a:b", "3:3", "-1:4", "1:2:3"):
        with pytest.raises(EmuError):
            parse_span(bad)


def test_overlapping_waits_take_lanes_and_slices_are_clipped_at_the_cut():
    rec = Recorder(TraceOptions(1, None, None), 1, COST)
    rec.shootdown(1, Proc(0, 5), 100, [1], "munmap")
    rec.shootdown(2, Proc(0, 6), 200, [1], "munmap")
    rec.ack(2, 1, 900, 900)          # the later task's wait ends first
    rec.ack(1, 1, 1000, 1000)
    rec.shootdown(3, Proc(0, 5), 1000, [1], "munmap")
    rec.ack(3, 1, 1500, 1500)
    waits = sorted((e["tid"], e["ts"], e["dur"]) for e in _events(rec) if e["ph"] == "X")
    lane0, lane1 = sorted({w[0] for w in waits})
    assert waits == [(lane0, 0.2, 0.7), (lane0, 1, 0.5), (lane1, 0.1, 0.9)]
    clipped = [e for e in _events(rec, 1200) if e["ph"] == "X"]
    assert max(e["ts"] + e["dur"] for e in clipped) == pytest.approx(1.2)
    assert not [e for e in _events(rec, 1200) if e["ph"] in "sf" and e["ts"] >= 1.2]


def test_cap_stops_at_the_window_start_but_keeps_slices_begun_before():
    rec = Recorder(TraceOptions(1, None, 200), 1, COST)     # each slice counts 81 bytes
    rec.window_start(0)
    rec.cpu_state(0, "s0", 0)
    rec.cpu_state(0, "s1", 10)
    rec.cpu_state(0, "long", 20)
    rec.cpu_state(1, "a", 0)
    rec.window_start(100)
    rec.cpu_state(1, "b", 110)           # over the budget: recording stops at 100
    assert rec.cut == 100
    rec.cpu_state(0, "end", 500)         # "long" began before the cut: kept, clipped
    rec.cpu_state(1, "c", 600)           # "b" began after it: dropped
    got = {e["name"]: (e["ts"], e["dur"]) for e in _events(rec, rec.cut) if e["ph"] == "X"}
    assert got == {"s0": (0, 0.01), "s1": (0.01, 0.01), "long": (0.02, 0.08), "a": (0, 0.1)}
