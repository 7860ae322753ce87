"""Bad input: one line naming the problem and where, exit status 2, no traceback, no
hang. A failure on any rank ends the whole job quickly."""

import re
import time

import pytest
from conftest import run_emu, selected_mpi

BAD = {
    "unknown scenario": (["--scenario", "no-such-thing"], "unknown scenario 'no-such-thing'"),
    "unknown key": (["--scenario", "{dir}/unknown.toml"], "unknown.toml:4: key 'machine.cpux'"),
    "malformed": (["--scenario", "{dir}/bad.toml"], "malformed TOML"),
    "negative": (["--scenario", "munmap-pair", "--set", "machine.dram_pages=-5"],
                 "must not be negative"),
    "placement": (["--scenario", "reclaim", "--cpus", "1"], "cannot be placed on 2 ranks"),
    "pinning": (["--scenario", "munmap-pair", "--cpus", "1"], "pinned to CPUs [1] but the machine has 1"),
    "cannot fit": (["--scenario", "munmap-pair", "--set", "machine.dram_pages=1000000000000"],
                   "more than this machine's"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_one_clear_line(case, tmp_path):
    (tmp_path / "unknown.toml").write_text(
        "[scenario]\ndescription = 'x'\n[machine]\ncpux = 4\n")
    (tmp_path / "bad.toml").write_text("[scenario\nname = 1\n")
    args, expected = BAD[case]
    args = [a.replace("{dir}", str(tmp_path)) for a in args]
    res = run_emu(2, "run", *args, timeout=60, check=False)
    assert res.returncode == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    ours = [line for line in lines if line.startswith("emu:")]
    assert len(ours) == 1 and expected in ours[0] and "Traceback" not in res.stderr
    if selected_mpi().flavour == "mpich":   # Open MPI's launcher adds its own notice
        assert lines == ours, res.stderr


def test_failure_on_a_nonzero_rank_aborts_the_job(tmp_path):
    t0 = time.monotonic()
    res = run_emu(4, "run", "--scenario", "munmap-storm", "--cpus", "4",
                  "--debug-fail-rank", "2", timeout=60, check=False)
    assert time.monotonic() - t0 < 30
    assert res.returncode != 0
    # mpiexec forwards every rank's stderr; another process's output may share the line
    messages = re.findall(r"emu: rank \d+: [^\n]*", res.stderr)
    assert len(messages) == 1, res.stderr
    assert messages[0].startswith("emu: rank 2: ") and "injected" in messages[0], res.stderr
    assert "Traceback" not in res.stderr
