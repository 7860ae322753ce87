"""Progress on rank 0's stderr: with a forced short interval (not a terminal) a small run
prints lines whose simulated time and work done never go back, and which do not change
the results; --quiet prints none. The run's timeline ends on its totals."""

import json
import re

from conftest import run_emu

from emu.results import simulated_view

RUN = ("run", "--scenario", "munmap-pair", "--set", "process.0.threads.0.repeat=150")
LINE = re.compile(r"emu: vanilla: simulated ([\d,.]+) ms, ([\d.]+)% \((\d+)/150 ops\), "
                  r"[\d,]+ windows/s(, ETA \d+m\d\ds)?$")
FAST = {"EMU_PROGRESS_INTERVAL_S": "0.002"}


def test_progress_lines_are_monotone_and_quiet_silences_them(tmp_path):
    shown, quiet = tmp_path / "shown.json", tmp_path / "quiet.json"
    res = run_emu(2, *RUN, "--json", str(shown), env=FAST)
    lines = [m for m in map(LINE.match, res.stderr.splitlines()) if m]
    assert len(lines) >= 3 and len(lines) == len(res.stderr.splitlines()), res.stderr
    times = [float(m.group(1).replace(",", "")) for m in lines]
    done = [int(m.group(3)) for m in lines]
    assert times == sorted(times) and done == sorted(done) and done[-1] <= 150
    res = run_emu(2, *RUN, "--json", str(quiet), "--quiet", env=FAST)
    assert res.stderr == "" and res.stdout == ""
    a, b = (json.loads(p.read_text())["runs"][0] for p in (shown, quiet))
    assert simulated_view(a) == simulated_view(b)
    assert a["timeline"]["ipis"][-1] == a["comm"]["ipi_messages"] > 0
    assert a["timeline"]["t_ns"][-1] >= a["runtime_ns"]
