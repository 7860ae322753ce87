"""The README's default, `mpirun -n 128 python -m emu`, on 128 real ranks: the vanilla
and luf comparison of llama-tiering, shrunk to a few ms of simulated time (two threads
per process, one token, small models) so it stays well under a minute of simulation on
a slow machine. The full default belongs to bench/benchmark.py, not to CI."""

import pytest
from conftest import run_emu

SMALL = ["--set=machine.dram_pages=1000", "--set=machine.cxl_pages=600"]
for _i in range(3):
    SMALL += [f"--set=process.{_i}.threads.0.count=2", f"--set=process.{_i}.threads.0.repeat=1",
              f"--set=file.{_i}.pages=400", f"--set=process.{_i}.mappings.0.pages=400"]


@pytest.mark.timeout(600)
def test_default_128_rank_comparison():
    res = run_emu(128, *SMALL, timeout=540)
    rows = [line for line in res.stdout.splitlines() if line.strip().startswith("TLB:")]
    assert len(rows) == 2
    for row in rows:
        assert len(row.split()) == 1 + 128 + 2          # "TLB:", 128 values, "TLB shootdowns"
    assert "-- vanilla: SAFE" in res.stdout and "-- luf: SAFE" in res.stdout
    assert "llama0: vanilla total time" in res.stdout
    assert "== Shootdown latency by flush source (simulated ns) ==" in res.stdout
    assert "IPIs the kernel would not send (not taken)" in res.stdout
