"""Set up MPI before it starts, and make any rank's exception abort the whole job.

MPICH's progress engine spins inside blocking calls; on an oversubscribed machine
(128 ranks on 2 cores) that costs 10-100x in wall time, so its throttle variables are
set before `mpi4py.MPI` is imported unless the user chose otherwise. Open MPI gets the
equivalent: `mpi_yield_when_idle`, which it sets by itself only when `mpirun` was told the
node is oversubscribed (not under `srun`, nor with a hostfile that claims enough slots).
Each MPI ignores the other's variables.
"""

import os
import sys
import time

ABORT_GRACE_S = 0.5

MPI_DEFAULTS = {
    "MPIR_CVAR_CH4_PROGRESS_THROTTLE": "1",
    "MPIR_CVAR_CH4_PROGRESS_THROTTLE_NO_PROGRESS_COUNT": "1",
    "MPIR_CVAR_ENABLE_HEAVY_YIELD": "1",
    "OMPI_MCA_mpi_yield_when_idle": "1",
    # emu's only one-sided windows are shared-memory ones (sync.py); without this Open
    # MPI also probes its UCX component, which prints errors where there is no UCX device
    "OMPI_MCA_osc": "sm",
    # UCX (the mpich wheel's network module) gives every rank shared-memory receive
    # FIFOs at start-up although MPICH carries all on-node messages in its own shared
    # memory: 16 entries instead of UCX's defaults take ~8 MB off each rank's RSS and
    # ~0.5 GB off /dev/shm at 128 ranks, with no change in speed (docs/performance.md)
    "UCX_POSIX_FIFO_SIZE": "16",
    "UCX_POSIX_RX_BUFS_GROW": "16",
    "UCX_SYSV_FIFO_SIZE": "16",
    "UCX_SYSV_RX_BUFS_GROW": "16",
}


def init_mpi():
    """Import mpi4py with the throttle variables set; return the MPI module."""
    for key, value in MPI_DEFAULTS.items():
        os.environ.setdefault(key, value)
    import mpi4py

    mpi4py.rc.threads = False
    from mpi4py import MPI

    return MPI


def abort_job(MPI, message: str | None, code: int = 1) -> None:
    """Print one line (unless there is none to add) and end every rank of the job
    (MPI_Abort), never hang."""
    if message is not None:
        rank = MPI.COMM_WORLD.Get_rank()
        sys.stderr.write(f"emu: rank {rank}: {message}\n")
        sys.stderr.flush()
        time.sleep(ABORT_GRACE_S)   # let mpiexec forward the line before it ends the job
    MPI.COMM_WORLD.Abort(code)
