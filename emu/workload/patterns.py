"""Access patterns over a range of pages: sequential, uniform random, zipf."""

from __future__ import annotations  # numpy.random only where a thread draws from it

import numpy as np

READ, WRITE, EXEC = 0, 1, 2
ACCESS = {"read": READ, "write": WRITE, "exec": EXEC}


def page_sequence(pattern: str, first: int, npages: int, count: int, cursor: int,
                  rng: np.random.Generator, zipf_a: float) -> tuple[list[int], int]:
    """`count` page numbers in [first, first+npages) and the new sequential cursor."""
    if pattern == "seq":
        idx = (cursor + np.arange(count)) % npages
        return (first + idx).tolist(), (cursor + count) % npages
    if pattern == "random":
        return (first + rng.integers(0, npages, count)).tolist(), cursor
    ranks = rng.zipf(zipf_a, count) - 1          # rank 0 is the hottest page
    return (first + (ranks % npages)).tolist(), cursor


def access_kinds(access: str, count: int, write_fraction: float,
                 rng: np.random.Generator) -> list[int] | int:
    """One kind for the whole step, or a per-touch list for a read/write mix."""
    if access != "mix":
        return ACCESS[access]
    return (rng.random(count) < write_fraction).astype(np.int64).tolist()
