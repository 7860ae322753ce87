"""The results file and checkpoints are written atomically: whatever interrupts the
writer, the file is the previous complete one or the new complete one (or absent if
there was none), never a part, and no temporary file is left beside it after a failed
write. No MPI."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT

from emu import checkpoint
from emu.results import write_atomic, write_json_atomic

WRITER = """
import sys
path, kind = sys.argv[1:3]
if kind == "json":   # only what it writes with: each start is paid 8 times, on a busy machine
    from emu.results import write_json_atomic as write
else:
    from emu.checkpoint import write
n = 0
while True:   # alternate two large documents until killed
    n += 1
    write(path, {"n": n, "rows": [[n] * 50 for _ in range(4000)]})
    print(n, flush=True)
"""
READ = {"json": lambda path: json.loads(path.read_text()),
        "checkpoint": lambda path: checkpoint.read(str(path))}


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    path = tmp_path / "out.json"
    write_json_atomic(str(path), {"runs": [1]})
    before = path.read_bytes()
    with pytest.raises(TypeError):   # fails before anything is written
        write_json_atomic(str(path), {"a": list(range(100000)), "z": object()})
    with pytest.raises(TypeError):   # fails after a part was written
        write_atomic(str(path), b"{" * 100000, object())
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["out.json"]


def test_a_failed_first_write_leaves_no_file(tmp_path):
    with pytest.raises(TypeError):
        write_json_atomic(str(tmp_path / "out.json"), {"a": [0] * 100000, "z": object()})
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("kind", ["json", "checkpoint"])
def test_a_writer_killed_at_any_moment_leaves_a_complete_file(tmp_path, kind):
    """SIGKILL a process that rewrites the file in a loop, at moments spread over a
    write; each time the file must parse and be one whole document."""
    path = tmp_path / "out"
    for i in range(8):
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), kind],
                                stdout=subprocess.PIPE, text=True, cwd=ROOT)
        if i:                        # wait for at least one complete write, then a bit more
            proc.stdout.readline()
        time.sleep(0.005 * i)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        if path.exists():
            doc = READ[kind](path)
            assert doc["rows"] == [[doc["n"]] * 50] * 4000
        else:
            assert i == 0            # killed before its first write completed
    assert path.exists()
