"""Checkpoint and resume: a resumed run's simulated results are the same bytes as an
uninterrupted run's, with another number of ranks; SIGTERM or SIGUSR1 (a batch system's
time limit) saves a checkpoint and stops with status 0; damaged checkpoints are refused
in one line.
"""

import json
import os
import re
import signal
import subprocess
import time
import uuid

import pytest
from conftest import ROOT, launch_command, rank_pids, run_emu, run_json, selected_mpi

from emu.checkpoint import read, write
from emu.cli import parse
from emu.engine import snapshot
from emu.errors import EmuError
from emu.results import simulated_view

# llama-tiering reduced to 12 threads on 64 CPUs, two policies: the checkpoints fall in
# the second run, with kernel tasks in flight on the coordinator (rebuilt by replaying
# its journal); on 4 ranks in two fake nodes only rank 0 has threads: rank 1 and 3 are
# dormant, and rank 2, the second node's leader, runs windows without work
THREADS = [f"--set=process.{p}.threads.0.{k}" for p in range(3) for k in ("repeat=1", "count=4")]
JOB = ("compare", "--cpus", "64", *THREADS, "--set", "scenario.duration_ns=3000000")
EVERY_NS = "1000000"


def simulated(doc: dict) -> list[str]:
    return [json.dumps(simulated_view(run), sort_keys=True) for run in doc["runs"]]


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory):
    """The job run once with a checkpoint every 1 ms: its results and its last checkpoint."""
    d = tmp_path_factory.mktemp("ckpt")
    doc = run_json(4, d, *JOB, "--checkpoint", str(d / "ck"), "--checkpoint-every-ns",
                   EVERY_NS, timeout=120, env={"EMU_RANKS_PER_NODE": "2"})
    return doc, d / "ck"


def test_resume_with_another_rank_count_gives_the_same_results(checkpointed, tmp_path):
    doc, ck = checkpointed
    saved = read(str(ck))
    assert saved["run_index"] == 1 and saved["boundary"]["start"] >= 2_000_000
    assert len(saved["done_runs"]) == 1
    resumed = run_json(3, tmp_path, "--resume", str(ck), timeout=120,
                       env={"EMU_RANKS_PER_NODE": "1"})
    assert resumed["command"] == doc["command"]
    assert simulated(resumed) == simulated(doc)


def test_checkpoints_do_not_change_results(checkpointed, tmp_path):
    doc, _ = checkpointed
    plain = run_json(2, tmp_path, *JOB, timeout=120)
    assert simulated(plain) == simulated(doc)


@pytest.mark.parametrize("how", ["SIGTERM to the ranks", "SIGUSR1 to the launcher"])
def test_a_stop_signal_saves_a_checkpoint_and_stops(checkpointed, tmp_path, how):
    """As batch systems stop a job: Slurm sends SIGTERM to a step's tasks at the time
    limit; launch/resume.sh's timer sends SIGUSR1 to the launcher, which passes it on
    (Open MPI's mpirun would end the job on SIGTERM). The job saves, exits 0, and the
    saved run resumed elsewhere gives the uninterrupted results."""
    doc, _ = checkpointed
    ck, out = tmp_path / "ck", tmp_path / "never.json"
    mpi = selected_mpi()
    tag = uuid.uuid4().hex
    proc = subprocess.Popen(launch_command(mpi, 3, *JOB, "--checkpoint", str(ck),
                                           "--checkpoint-every-ns", EVERY_NS, "--quiet",
                                           "--json", str(out)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, cwd=ROOT,
                            env=dict(os.environ, **mpi.env, EMU_TEST_TAG=tag))
    try:
        deadline = time.monotonic() + 90
        while not ck.exists():              # the first run's first checkpoint (at 1 ms of
            assert proc.poll() is None and time.monotonic() < deadline   # 3): running
            time.sleep(0.1)
        if how.startswith("SIGTERM"):
            ranks = rank_pids(tag)
            assert len(ranks) == 3
            for pid in ranks.values():
                os.kill(pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGUSR1)
        _, err = proc.communicate(timeout=60)
    except (subprocess.TimeoutExpired, AssertionError):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("no checkpoint within 90 s, or no stop within 60 s of the signal")
    assert proc.returncode == 0, err[-2000:]
    assert "stopped by a signal after saving a checkpoint" in err and not out.exists(), err
    said = int(re.search(r"at simulated ([\d,]+) ns", err).group(1).replace(",", ""))
    assert read(str(ck))["boundary"]["start"] == said         # the file is the stop's
    if how.startswith("SIGTERM"):
        resumed = run_json(4, tmp_path, "--resume", str(ck), timeout=120)
        assert simulated(resumed) == simulated(doc)


def test_damaged_checkpoints_are_refused_in_one_line(checkpointed, tmp_path):
    _, ck = checkpointed
    data = ck.read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(data[:len(data) // 2])
    foreign = tmp_path / "foreign"
    foreign.write_text('{"schema": "emu-results/1"}\n')
    for path, why in ((cut, "truncated"), (foreign, "not an emu checkpoint"),
                      (tmp_path / "missing", "cannot read")):
        with pytest.raises(EmuError, match=why):
            read(str(path))
        r = run_emu(2, "--resume", str(path), check=False, timeout=60)
        assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
        ours = [line for line in r.stderr.splitlines() if line.startswith("emu:")]
        assert len(ours) == 1 and why in ours[0], r.stderr


def test_resume_refuses_options_the_checkpoint_decides(checkpointed):
    _, ck = checkpointed
    r = run_emu(2, "--resume", str(ck), "--scenario", "munmap-pair", check=False, timeout=60)
    assert r.returncode == 2 and "--scenario is taken from the checkpoint" in r.stderr


def test_options_are_not_abbreviated(capsys):
    """An abbreviation of a scenario option would slip past --resume's check."""
    with pytest.raises(SystemExit) as exc:
        parse(["--resume", "ck", "--scen", "munmap-pair"])
    assert exc.value.code == 2 and "unrecognized arguments: --scen" in capsys.readouterr().err


def test_checkpoint_file_round_trip(tmp_path):
    doc = {"inputs": {"argv": ["run"]}, "cpus": {3: b"\x00" * 10}}
    write(str(tmp_path / "ck"), doc)
    assert read(str(tmp_path / "ck")) == doc
    assert [p.name for p in tmp_path.iterdir()] == ["ck"]      # no temporary file left


def test_snapshot_resolves_shared_objects_on_the_loading_side():
    """A saved object's references to shared objects (the engine, the scenario's parts)
    become the loading side's objects; its own data is copied."""
    old_sc, new_sc = {"cost": {"walk": 1}, "steps": [{"op": "touch"}]}, \
        {"cost": {"walk": 1}, "steps": [{"op": "touch"}]}
    old_engine, new_engine = object(), object()
    state = {"engine": old_engine, "cost": old_sc["cost"], "step": old_sc["steps"][0],
             "own": [1, 2, 3], "none": None}
    data = snapshot.save(state, {"engine": old_engine, "sc": old_sc, "replica": None})
    loaded = snapshot.load(data, {"engine": new_engine, "sc": new_sc, "replica": None})
    assert loaded["engine"] is new_engine
    assert loaded["cost"] is new_sc["cost"] and loaded["step"] is new_sc["steps"][0]
    assert loaded["own"] == [1, 2, 3] and loaded["own"] is not state["own"]
    assert loaded["none"] is None
