"""Rank 0's side of `--trace`: one Chrome trace-event JSON file for all the runs of a
command, written to a temporary file beside the target and renamed over it at the end
(as results are), so a reader never sees half a file. Each run is one process (pid);
the runs' parts arrive from the ranks one at a time and go straight to disk."""

import json
import os
import sys
import tempfile

from emu.trace import INF


class TraceFile:
    def __init__(self, path: str, cap_bytes: int | None, span: tuple[int, int] | None):
        self.path = path
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        fd, self.tmp = tempfile.mkstemp(dir=directory, prefix=".emu-", suffix=".json")
        self.f = os.fdopen(fd, "wb")
        self.f.write(b'{"displayTimeUnit":"ns","traceEvents":[\n')
        self.first = True
        self.runs: list[dict] = []
        self.meta = {"time": "ts and dur are simulated time in microseconds",
                     "span_ns": list(span) if span else None, "cap_bytes": cap_bytes}

    def write(self, part) -> None:
        """Append comma-separated events (a rank's part of a run)."""
        if not part:
            return
        if not self.first:
            self.f.write(b",\n")
        self.f.write(part)
        self.first = False

    def begin_run(self, pid: int, policy: str, scenario: str) -> None:
        name = f"{policy} ({scenario})"
        self.write(",\n".join(json.dumps(e) for e in (
            {"ph": "M", "pid": pid, "name": "process_name", "args": {"name": name}},
            {"ph": "M", "pid": pid, "name": "process_sort_index", "args": {"sort_index": pid}},
        )).encode())

    def end_run(self, pid: int, policy: str, cut: int, end: int) -> None:
        """Record how much of the run is in the file; say so on stderr if capped."""
        run = {"pid": pid, "policy": policy, "end_ns": end, "truncated": cut < INF}
        if cut < INF:
            run["recorded_until_ns"] = cut
            sys.stderr.write(f"emu: trace of '{policy}' capped at {self.meta['cap_bytes']} bytes: "
                             f"it holds simulated time 0 to {cut} ns of {end} ns "
                             "(choose another part with --trace-span START:END)\n")
        self.runs.append(run)

    def close(self) -> None:
        other = dict(self.meta, runs=self.runs,
                     truncated=any(r["truncated"] for r in self.runs))
        self.f.write(b'\n],"otherData":' + json.dumps(other).encode() + b"}\n")
        self.f.close()
        os.replace(self.tmp, self.path)
