"""The commands that need no MPI, and the lint gate."""

import json
import subprocess
import sys

from conftest import ROOT, run_json


def _emu(*args):
    return subprocess.run([sys.executable, "-m", "emu", *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)


def test_scenarios_lists_builtins_with_descriptions():
    res = _emu("scenarios")
    assert res.returncode == 0
    names = [line.split()[0] for line in res.stdout.splitlines()]
    assert {"llama-tiering", "munmap-pair", "reclaim", "migrate", "hazard-write"} <= set(names)


def test_show_renders_every_format(tmp_path):
    doc = run_json(2, tmp_path, "run", "--scenario", "munmap-pair",
                   "--set", "process.0.threads.0.repeat=20")
    path = next(tmp_path.glob("*.json"))
    assert doc["schema"] == "emu-results/1" and len(doc["runs"]) == 1
    run = doc["runs"][0]
    for key in ("policy", "scenario", "seed", "cpus", "ranks", "quantum_ns", "runtime_ns",
                "cost_model", "wall_s"):
        assert key in run
    interrupts = _emu("show", str(path), "--format", "interrupts").stdout
    row = next(line for line in interrupts.splitlines() if line.strip().startswith("TLB:"))
    assert [int(x) for x in row.split()[1:3]] == run["per_cpu"]["tlb_shootdowns"]
    perf = _emu("show", str(path), "--format", "perf").stdout
    assert "dTLB-load-misses" in perf and "iTLB-load-misses" in perf
    vmstat = _emu("show", str(path), "--format", "vmstat").stdout
    assert f"nr_tlb_remote_flush {run['vmstat']['nr_tlb_remote_flush']}" in vmstat
    csv = _emu("show", str(path), "--format", "csv").stdout.splitlines()
    assert len(csv) == 1 + run["cpus"]
    report = _emu("show", str(path)).stdout
    assert "Safety oracle" in report and "Measured (wall clock" in report


def test_show_rejects_a_file_that_is_not_results(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"hello": 1}))
    res = _emu("show", str(bad))
    assert res.returncode == 2 and "not an emu results file" in res.stderr
    assert "Traceback" not in res.stderr


def test_ruff_is_clean():
    res = subprocess.run([sys.executable, "-m", "ruff", "check", "emu", "tests", "bench"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stdout
