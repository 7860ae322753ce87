"""Checkpoint and resume (--checkpoint PATH, --checkpoint-every-ns N, --resume PATH).

At a window boundary the node leaders choose alike (engine/sync.py: the first window
start at or past each multiple of N simulated ns, or at once after SIGTERM or SIGUSR1,
when the job then stops with status 0), every rank that takes part in the run saves its
CPUs as data (engine/snapshot.py) and streams them to rank 0. Rank 0 writes one file,
atomically, the previous one standing until the new one is complete: the run's inputs,
the results of the runs already finished, the boundary (epoch, window start, horizon),
the published state, the page-table replica, the CPUs, and the coordinator's journal
(engine/journal.py) from which a resumed run rebuilds the coordinator by replaying it.
A resumed run may use another number of ranks; its simulated results are the same
bytes as those of a run that was never interrupted.

The file is a pickle behind a header holding its length and SHA-256: a truncated or
foreign file is refused with one line. Like the program, a checkpoint is trusted input
(unpickling can run code): resume only checkpoints you wrote.
"""

from __future__ import annotations

import hashlib
import pickle

import msgpack

from emu.engine import snapshot
from emu.engine.collect import bcast_from_root, scatter_from_root, stream_to_root
from emu.errors import EmuError
from emu.results import write_atomic

MAGIC = b"emu-checkpoint/4\n"
SIMULATION_OPTIONS = ("--scenario", "--set", "--seed", "--cpus", "--quantum-ns", "--policy",
                      "--policies")


class Plan:
    """Where and how often to checkpoint, and what a checkpoint carries besides the
    current run: the job's inputs and, on rank 0, the runs finished so far."""

    def __init__(self, path: str, every_ns: int, inputs: dict):
        self.path, self.every_ns, self.inputs = path, every_ns, inputs
        self.run_index = 0
        self.done_runs: list[dict] = []


def write(path: str, doc: dict) -> None:
    data = pickle.dumps(doc, protocol=pickle.HIGHEST_PROTOCOL)
    header = MAGIC + f"{len(data)} {hashlib.sha256(data).hexdigest()}\n".encode()
    write_atomic(path, header, data)


def read(path: str) -> dict:
    """A checkpoint file's contents, or one line saying why it cannot be resumed."""
    try:
        with open(path, "rb") as f:
            if f.read(len(MAGIC)) != MAGIC:
                raise EmuError("not an emu checkpoint (or one of another emu version)", path)
            length, digest = f.readline().split()
            data = f.read()
    except OSError as exc:
        raise EmuError(f"cannot read the checkpoint ({exc.strerror})", path) from None
    except ValueError:
        raise EmuError("damaged checkpoint header", path) from None
    if len(data) != int(length) or hashlib.sha256(data).hexdigest().encode() != digest:
        raise EmuError(f"truncated or damaged checkpoint ({len(data)} of {int(length)} "
                       "bytes, or a wrong digest)", path)
    return pickle.loads(data)


def check_resume_argv(argv: list[str]) -> None:
    """--resume continues the checkpoint's run: its inputs come from the file."""
    for arg in argv:
        name = arg.split("=")[0]
        if name in SIMULATION_OPTIONS:
            raise EmuError(f"{name} is taken from the checkpoint and cannot be given with "
                           "--resume", "--resume")


def save(MPI, comm, plan: Plan, cpus: list, shared: dict, takers: list[int],
         boundary: dict | None, on_idle=None) -> None:
    """Every rank in `takers` (those that run windows) saves its CPUs; rank 0 adds the
    `boundary` (its state at this window boundary) and writes the file. The others run
    `on_idle` while they wait for rank 0 (a liveness check)."""
    mine = msgpack.packb({c.cid: snapshot.save(c.__dict__, shared) for c in cpus})
    states: dict[int, bytes] = {}
    stream_to_root(MPI, comm, mine, lambda part: states.update(msgpack.unpackb(
        part, strict_map_key=False)), ranks=takers, on_idle=on_idle)
    if comm.Get_rank() == 0:
        write(plan.path, {"inputs": plan.inputs, "run_index": plan.run_index,
                          "done_runs": plan.done_runs, "boundary": boundary, "cpus": states})


def distribute(MPI, comm, doc: dict | None, placement: list[int]) -> tuple[dict, dict]:
    """Rank 0's loaded checkpoint to every rank: (the boundary's shared part, this
    rank's CPU states by CPU number)."""
    common = None
    parts = None
    if doc is not None:
        b = doc["boundary"]
        common = {k: b[k] for k in ("epoch", "start", "horizon", "paced_min",
                                    "checkpoint_next", "pub", "replica")}
        parts = {r: {} for r in range(comm.Get_size())}
        for cid, data in doc["cpus"].items():
            parts[placement[cid]][cid] = data
        parts = {r: msgpack.packb(p) for r, p in parts.items()}
    common = bcast_from_root(comm, common)
    mine = msgpack.unpackb(scatter_from_root(MPI, comm, parts), strict_map_key=False)
    return common, mine
