"""Hostile input, without MPI: each case is an EmuError (one line naming file, key or
position; exit 2) raised before anything large is allocated."""

import subprocess
import sys
import tracemalloc

import pytest
from conftest import ROOT

from emu.cli import _prepare, parse
from emu.errors import EmuError

SMALL_BOUND = 8 << 20   # bytes the checks may allocate before refusing

RUN = {
    "frames": (["--set", "machine.dram_pages=1000000000000"], "mostly machine.dram_pages"),
    "cpus": (["--cpus", "1000000000000"], "machine.pcid_slots"),
    "threads": (["--set", "process.0.threads.0.count=1000000000"], "threads.*.count"),
    "vpages": (["--set", "process.0.mappings.0.pages=1000000000000"], "mappings.*.pages"),
    "scale": (["--set", "scenario.scale=1000000000"], "more than this machine's"),
    "negative": (["--set", "process.0.threads.0.repeat=-3"], "threads.0.repeat': must not"),
    "fraction": (["--set", "process.0.threads.0.count=2.5"], "expected an integer, got 2.5"),
    "beyond int64": (["--set", "scenario.duration_ns=100000000000000000000"], "at most 2**62"),
    "nan": (["--set", "cost.zipf=nan"], "key 'cost.zipf': unknown key"),
    "tlb ways": (["--set", "machine.stlb_ways=7"], "2048 entries cannot be split"),
    "cpu list": (["--set", "process.0.threads.0.cpus=[\"x\"]"], "expected a list of CPU"),
    "set no value": (["--set", "machine.dram_pages"], "--set expects key=value"),
    "set into a scalar": (["--set", "scenario.duration_ns.x=1"], "'scenario.duration_ns' is not a"),
    "set bad index": (["--set", "process.7.name=x"], "no element 7 in 'process'"),
    "set deep value": (["--set", "machine.cpus=" + "[" * 5000], "expected an integer"),
    "self overlay": (["--set", "process.0.mappings.1.overlay=own"], "overlay 'own' must name"),
    "missing file": (["--scenario", "/nonexistent/x.toml"], "no such scenario file"),
}


def _refusal(argv: list[str]) -> tuple[str, int]:
    """The EmuError message of preparing `run ARGV` on 2 ranks, and peak bytes allocated."""
    args = parse(["run", "--scenario", "munmap-pair", "--cpus", "2", *argv])
    tracemalloc.start()
    try:
        with pytest.raises(EmuError) as exc:
            _prepare(args, 2)
        return str(exc.value), tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("case", sorted(RUN))
def test_bad_run_input_is_refused_before_allocating(case):
    argv, expected = RUN[case]
    message, peak = _refusal(argv)
    assert expected in message and "\n" not in message
    assert peak < SMALL_BOUND, f"{peak} bytes allocated before refusing"


@pytest.mark.parametrize("text,expected", [
    ("a = " + "[" * 5000 + "]" * 5000, "nested too deeply"),
    ("#" * (2 << 20), "a scenario file has at most"),
    ("file = 5\n", "x.toml:1: key 'file': expected an array of tables"),
    ("[process]\nname = 'p'\n", "x.toml:1: key 'process': expected an array of tables"),
    ("[scenario\n", "malformed TOML"),
])
def test_bad_scenario_files_are_refused(tmp_path, text, expected):
    path = tmp_path / "x.toml"
    path.write_text(text)
    message, peak = _refusal(["--scenario", str(path)])
    assert expected in message and "\n" not in message
    assert peak < SMALL_BOUND


def test_a_binary_scenario_file_is_refused(tmp_path):
    path = tmp_path / "x.toml"
    path.write_bytes(b"\xff\xfe\x00")
    assert "not UTF-8 text" in _refusal(["--scenario", str(path)])[0]


def _show(path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "emu", "show", str(path)], capture_output=True,
                          text=True, cwd=ROOT, timeout=60)


@pytest.mark.parametrize("content,expected", [
    ('{"schema": "emu-results/1", "runs": [{"policy', "not JSON: Unterminated string"),
    ('{"schema": "emu-results/1", "runs": [1]}', "malformed results file"),
    ('{"schema": "other/2", "runs": []}', "not an emu results file"),
    ('[1, 2, 3]', "not an emu results file"),
    ("[" * 100000, "not JSON text"),
])
def test_show_refuses_truncated_or_foreign_json(tmp_path, content, expected):
    path = tmp_path / "r.json"
    path.write_text(content)
    res = _show(path)
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr.count("\n") == 1 and expected in res.stderr and str(path) in res.stderr


def test_usage_errors_are_one_line():
    res = subprocess.run([sys.executable, "-m", "emu", "run", "--cpus", "many"],
                         capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 2 and res.stderr.count("\n") == 1
    assert "invalid int value: 'many'" in res.stderr
