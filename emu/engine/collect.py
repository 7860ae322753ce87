"""Gather per-rank results to rank 0 as msgpack bytes (no pickle on the wire)."""

import msgpack
import numpy as np


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


def stream_to_root(MPI, comm, data: bytes, sink) -> None:
    """Hand every rank's bytes to `sink` on rank 0 in rank order, receiving one rank's
    part at a time, so rank 0 never holds more than its own and one other."""
    if comm.Get_rank() != 0:
        comm.Send(np.array([len(data)], dtype=np.int64), 0, STREAM_TAG)
        if data:
            comm.Send([data, MPI.BYTE], 0, STREAM_TAG)
        return
    sink(data)
    n = np.zeros(1, dtype=np.int64)
    for r in range(1, comm.Get_size()):
        comm.Recv(n, r, STREAM_TAG)
        buf = bytearray(int(n[0]))
        if buf:
            comm.Recv([buf, MPI.BYTE], r, STREAM_TAG)
        sink(buf)
