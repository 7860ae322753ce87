"""What a rank imports to run: at 128 ranks on 2 cores every rank's imports add up in the
start-up, so the modules only rank 0 or a rank with threads uses stay out of the rest.
Pure import checks in a fresh interpreter (no MPI job)."""

import subprocess
import sys

from conftest import ROOT

# what every rank imports to run a policy (cli.cmd_simulate and runner.run_policy)
EVERY_RANK = "import emu.cli, emu.engine.mpi_env, emu.engine.collect, emu.runner, emu.results"
# only rank 0 (the scenario loader), the node leader (tempfile), a thread (numpy.random),
# a job that checkpoints or resumes (emu.checkpoint and its hashlib)
NOT_ON_EVERY_RANK = ("emu.scenario.load", "tomllib", "importlib.resources", "numpy.random",
                     "socket", "tempfile", "zipfile", "emu.coordinator", "emu.report.render",
                     "emu.trace", "emu.checkpoint", "emu.engine.journal", "emu.engine.snapshot",
                     "hashlib")


def imported(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\nprint(*sys.modules)"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_a_rank_without_threads_imports_no_loader_random_or_kernel():
    assert imported(EVERY_RANK) & set(NOT_ON_EVERY_RANK) == set()


def test_the_check_can_fail():
    assert "numpy.random" in imported(f"{EVERY_RANK}\nimport emu.workload.program as p\n"
                                      "p.np.random.default_rng(1)")
