"""The README's default: `mpirun -n 128 python -m emu` compares vanilla and luf on
llama-tiering and prints a TLB row with 128 values for each."""

from conftest import run_emu


def test_default_128_rank_comparison():
    res = run_emu(128, timeout=480)
    rows = [line for line in res.stdout.splitlines() if line.strip().startswith("TLB:")]
    assert len(rows) == 2
    for row in rows:
        assert len(row.split()) == 1 + 128 + 2          # "TLB:", 128 values, "TLB shootdowns"
    assert "-- vanilla: SAFE" in res.stdout and "-- luf: SAFE" in res.stdout
    assert "llama0: vanilla total time" in res.stdout
