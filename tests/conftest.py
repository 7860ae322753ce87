"""Helpers for tests that spawn real MPI jobs: small rank counts, a timeout, and the
whole process group killed on timeout so no rank outlives its test."""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def mpiexec() -> str:
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if not found:
        pytest.fail("no mpiexec: install with pip install -e '.[mpich]'")
    return found


def run_emu(ranks: int, *args: str, timeout: float = 240, env: dict | None = None,
            check: bool = True) -> subprocess.CompletedProcess:
    cmd = [mpiexec(), "-n", str(ranks), sys.executable, "-m", "emu", *args]
    full_env = dict(os.environ, **(env or {}))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=full_env, cwd=ROOT)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"timed out after {timeout} s: {' '.join(cmd)}")
    result = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    if check and proc.returncode != 0:
        pytest.fail(f"exit {proc.returncode}: {' '.join(cmd)}\n{err[-3000:]}")
    return result


def run_json(ranks: int, tmp_path: Path, *args: str, timeout: float = 240,
             env: dict | None = None) -> dict:
    out = tmp_path / f"r{len(list(tmp_path.iterdir()))}.json"
    run_emu(ranks, *args, "--json", str(out), "--quiet", timeout=timeout, env=env)
    return json.loads(out.read_text())


def ipis(run: dict) -> int:
    return sum(run["per_cpu"]["tlb_shootdowns"])
