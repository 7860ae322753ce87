"""A rank killed with SIGKILL mid-run ends the job within 30 s with a non-zero status.

Launchers differ in what they do when a rank dies: hydra and Open MPI's mpirun end the
job themselves, but `srun` without --kill-on-bad-exit or Open MPI with --enable-recovery
leave the other ranks running. Then emu itself must notice (emu/engine/liveness.py) and
say which rank died, in one line. Hydra is kept from noticing by a shell between it and
each rank that outlives the rank.
"""

import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid

import pytest
from conftest import FLAVOURS, ROOT, find_mpi, launch_command, rank_pids, tagged_processes

RANKS = 4
ENDLESS = ("run", "--scenario", "munmap-pair", "--cpus", str(RANKS), "--quiet",
           "--set", "process.0.threads.0.repeat=100000000")
PYTHON = os.path.realpath(sys.executable)


def _in_window_loop(pid: int) -> bool:
    """Past the last blocking MPI call of start-up: the rank has opened its sync pipe."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
        return any(re.search(r"/emu-sync-[^/]+/\d+$", os.readlink(f"/proc/{pid}/fd/{fd}"))
                   for fd in fds)
    except OSError:
        return False


def _kill_rank_mid_run(flavour: str, victim: int, survivors_kept: bool):
    """Start an endless run, SIGKILL rank `victim` once every rank is in the window loop;
    return (pid killed, seconds until mpiexec ended, exit status, stderr)."""
    mpi = find_mpi(flavour)
    if mpi is None:
        if os.environ.get("CI"):
            pytest.fail(f"no {flavour} installed (.ci/run installs both)")
        pytest.skip(f"no {flavour} installed (set EMU_TEST_{flavour.upper()}_PREFIX)")
    tag = uuid.uuid4().hex
    env = dict(os.environ, **mpi.env, EMU_TEST_TAG=tag)
    if survivors_kept and flavour == "openmpi":
        cmd = launch_command(mpi, RANKS, *ENDLESS, options=("--enable-recovery",))
    elif survivors_kept:
        shell = shlex.join([sys.executable, "-m", "emu", *ENDLESS]) + "; sleep 100"
        cmd = [mpi.mpiexec, *mpi.options, "-n", str(RANKS), "sh", "-c", shell]
    else:
        cmd = launch_command(mpi, RANKS, *ENDLESS)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        pids = {}
        while time.monotonic() < deadline and proc.poll() is None and not (
                len(pids) == RANKS and all(map(_in_window_loop, pids.values()))):
            time.sleep(0.2)
            pids = rank_pids(tag)
        assert proc.poll() is None and len(pids) == RANKS, "the run did not start"
        os.kill(pids[victim], signal.SIGKILL)
        killed = time.monotonic()
        try:
            _, err = proc.communicate(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            pytest.fail(f"the job outlived rank {victim} by 40 s:\n{proc.communicate()[1]}")
        return pids[victim], time.monotonic() - killed, proc.returncode, err
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
        for pid, _, _ in tagged_processes(tag):   # in sessions of their own under the launcher
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# rank 3 has only idle CPUs: it sleeps in another wait; once is enough (MPI-independent)
CASES = [(f, 0) for f in FLAVOURS] + [(f, 1) for f in FLAVOURS] + [(FLAVOURS[0], 3)]


@pytest.mark.parametrize("flavour,victim", CASES, ids=lambda v: str(v))
def test_emu_ends_the_job_when_the_launcher_would_not(flavour, victim):
    pid, took, status, err = _kill_rank_mid_run(flavour, victim, survivors_kept=True)
    assert took < 30 and status != 0, err
    lines = re.findall(r"emu: rank \d+: [^\n]*", err)
    assert len(lines) == 1, err
    assert re.search(rf": rank {victim} \(pid {pid} on .*\) died", lines[0]), err
    assert "Traceback" not in err


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_the_launcher_ends_the_job(flavour):
    _, took, status, err = _kill_rank_mid_run(flavour, 1, survivors_kept=False)
    assert took < 30 and status != 0, err
