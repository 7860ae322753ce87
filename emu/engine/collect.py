"""Gather per-rank results to rank 0 as msgpack bytes (no pickle on the wire),
broadcast rank 0's checked scenario to the others, and stream bytes to and from rank 0
(traces, checkpoints)."""

import pickle

import msgpack
import numpy as np

from emu.engine.sync import backoff_wait


def gather_to_root(MPI, comm, obj) -> list | None:
    data = np.frombuffer(msgpack.packb(obj, use_bin_type=True), dtype=np.uint8)
    counts = np.zeros(comm.Get_size(), dtype=np.int64)
    comm.Gather(np.array([len(data)], dtype=np.int64), counts, root=0)
    if comm.Get_rank() == 0:
        displs = np.concatenate([[0], np.cumsum(counts)[:-1]])
        buf = np.empty(int(counts.sum()), dtype=np.uint8)
        comm.Gatherv(data, [buf, counts, displs, MPI.BYTE], root=0)
        return [msgpack.unpackb(buf[d:d + n].tobytes(), raw=False, strict_map_key=False)
                for d, n in zip(displs.tolist(), counts.tolist(), strict=True)]
    comm.Gatherv(data, None, root=0)
    return None


STREAM_TAG = 7           # apart from the engine's epoch tags (0, 1)
ROOT_NAP_S = 0.01        # longest sleep of a rank waiting for rank 0's broadcast


def _send_bytes(MPI, comm, data: bytes, dest: int, on_idle=None) -> None:
    """`data` to `dest` (its length, then the bytes), polled with a back-off."""
    parts = [np.array([len(data)], dtype=np.int64)] + ([[data, MPI.BYTE]] if data else [])
    for part in parts:
        backoff_wait(comm.Isend(part, dest, STREAM_TAG).Test, on_idle, ROOT_NAP_S)


def _recv_bytes(MPI, comm, source: int, on_idle=None) -> bytearray:
    """What _send_bytes sent from `source`, polled with a back-off."""
    n = np.zeros(1, dtype=np.int64)
    backoff_wait(comm.Irecv(n, source, STREAM_TAG).Test, on_idle, ROOT_NAP_S)
    buf = bytearray(int(n[0]))
    if buf:
        backoff_wait(comm.Irecv([buf, MPI.BYTE], source, STREAM_TAG).Test, on_idle,
                     ROOT_NAP_S)
    return buf


def stream_to_root(MPI, comm, data: bytes, sink, ranks: list[int] | None = None,
                   on_idle=None) -> None:
    """Hand the bytes of rank 0 and of `ranks` (default: every rank) to `sink` on rank 0
    in rank order, receiving one rank's part at a time, so rank 0 never holds more than
    its own and one other. Every wait is polled with a back-off (nothing spins in MPI),
    running `on_idle` between polls (e.g. a liveness check)."""
    if comm.Get_rank() != 0:
        _send_bytes(MPI, comm, data, 0, on_idle)
        return
    sink(data)
    for r in (range(1, comm.Get_size()) if ranks is None else sorted(set(ranks) - {0})):
        sink(_recv_bytes(MPI, comm, r, on_idle))


def scatter_from_root(MPI, comm, parts: dict[int, bytes] | None) -> bytes:
    """Rank 0's `parts[r]` to each rank r (its own returned); polled with a back-off."""
    if comm.Get_rank() == 0:
        for r in range(1, comm.Get_size()):
            _send_bytes(MPI, comm, parts[r], r)
        return parts[0]
    return bytes(_recv_bytes(MPI, comm, 0))


def allgather_flag(MPI, comm, flag: bool) -> np.ndarray:
    """Every rank's `flag`, on every rank (non-blocking, polled with a back-off)."""
    everyone = np.zeros(comm.Get_size(), dtype=np.int64)
    backoff_wait(comm.Iallgather(np.array([int(flag)], dtype=np.int64), everyone).Test,
                 cap=ROOT_NAP_S)
    return everyone.astype(bool)


def bcast_from_root(comm, obj):
    """Rank 0's `obj` on every rank. Pickled, not msgpack: the scenario must arrive as
    the very same objects (tuples, shared parts). Non-blocking, polled with a sleep
    back-off up to ROOT_NAP_S: every other rank waits for rank 0 alone, and at 128 ranks
    on 2 cores their polls would take its CPU (nothing spins in a blocking call)."""
    root = comm.Get_rank() == 0
    data = np.frombuffer(pickle.dumps(obj), dtype=np.uint8) if root else None
    n = np.array([len(data) if root else 0], dtype=np.int64)
    backoff_wait(comm.Ibcast(n, root=0).Test, cap=ROOT_NAP_S)
    buf = data if root else np.empty(int(n[0]), dtype=np.uint8)
    backoff_wait(comm.Ibcast(buf, root=0).Test, cap=ROOT_NAP_S)
    return obj if root else pickle.loads(buf.tobytes())
