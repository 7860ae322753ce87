"""Placement of components on ranks, apart from the model (as SST does).

CPUs are spread over ranks in contiguous blocks (CPU i on rank i when there are as
many CPUs as ranks); the coordinator shares rank 0 with CPU 0, where kswapd runs.
"""

from emu.errors import EmuError


def place(ncpus: int, ranks: int) -> list[int]:
    """Rank of each component: CPUs 0..ncpus-1, then the coordinator."""
    if ncpus < ranks:
        raise EmuError(f"--cpus {ncpus} cannot be placed on {ranks} ranks: every rank needs "
                       f"at least one CPU (use --cpus >= {ranks} or fewer ranks)")
    cpu_rank = [c * ranks // ncpus for c in range(ncpus)]
    return cpu_rank + [0]
