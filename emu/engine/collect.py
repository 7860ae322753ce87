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
