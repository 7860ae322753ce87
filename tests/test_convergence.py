"""bench/convergence.py's pure parts: which ensemble members count, and their mean. No
MPI: the results are made up."""

import importlib.util
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))     # convergence imports benchmark beside it
spec = importlib.util.spec_from_file_location("convergence", ROOT / "bench" / "convergence.py")
conv = importlib.util.module_from_spec(spec)
spec.loader.exec_module(conv)


def res(allocstall: int) -> dict:
    return {"vanilla": {"allocstall": allocstall}}


def test_a_member_that_repeats_its_seeds_unperturbed_run_at_every_quantum_is_left_out():
    # two seeds of three members each: member 2 repeats seed 1's run everywhere, member 4
    # repeats seed 2's at q = 10 only, member 5 repeats it everywhere
    runs_q = {10: [res(1), res(2), res(1), res(7), res(7), res(7)],
              5: [res(3), res(4), res(3), res(8), res(9), res(8)]}
    kept = conv.distinct(runs_q, 3)
    assert kept == {10: [res(1), res(2), res(7), res(7)], 5: [res(3), res(4), res(8), res(9)]}
    assert conv.mean(kept[5]) == {"vanilla": {"allocstall": 6.0}}


def test_every_unperturbed_run_is_kept_even_when_seeds_agree():
    runs_q = {10: [res(1), res(1)], 5: [res(2), res(2)]}
    assert conv.distinct(runs_q, 1) == runs_q
