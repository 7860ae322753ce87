"""Set up MPI before it starts, and make any rank's exception abort the whole job.

MPICH's progress engine spins inside blocking calls; on an oversubscribed machine
(128 ranks on 2 cores) that costs 10-100x in wall time, so the throttle variables are
set before `mpi4py.MPI` is imported unless the user chose otherwise.
"""

import os
import sys
import time

ABORT_GRACE_S = 0.5

MPICH_THROTTLE = {
    "MPIR_CVAR_CH4_PROGRESS_THROTTLE": "1",
    "MPIR_CVAR_CH4_PROGRESS_THROTTLE_NO_PROGRESS_COUNT": "1",
    "MPIR_CVAR_ENABLE_HEAVY_YIELD": "1",
}


def init_mpi():
    """Import mpi4py with the throttle variables set; return the MPI module."""
    for key, value in MPICH_THROTTLE.items():
        os.environ.setdefault(key, value)
    import mpi4py

    mpi4py.rc.threads = False
    from mpi4py import MPI

    return MPI


def abort_job(MPI, message: str, code: int = 1) -> None:
    """Print one line and end every rank of the job (MPI_Abort), never hang."""
    rank = MPI.COMM_WORLD.Get_rank()
    sys.stderr.write(f"emu: rank {rank}: {message}\n")
    sys.stderr.flush()
    time.sleep(ABORT_GRACE_S)   # let mpiexec forward the line before it tears the job down
    MPI.COMM_WORLD.Abort(code)
