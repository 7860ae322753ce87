"""Refuse a run whose state cannot fit in this machine's memory, before allocating it.

The busiest rank (rank 0: the coordinator and its share of the CPUs) holds per-frame,
per-virtual-page, per-TLB-set and per-thread Python objects. The costs below were
measured with tracemalloc on CPython 3.11 (a coordinator plus one replica per frame and
per virtual page; one `Cpu` per TLB set and PCID slot; `place_threads` plus one `Thread`
per thread); the check compares their sum with the physical memory, so a size that
could never run (`machine.dram_pages = 10**12`) is one line instead of a MemoryError or
the OOM killer after minutes of allocation.
"""

import os

from emu.errors import EmuError

BYTES_PER_FRAME = 353
BYTES_PER_VPAGE = 65
BYTES_PER_TLB_SET = 137
BYTES_PER_PCID_SLOT = 96
BYTES_PER_THREAD = 1659
TLBS = ("dtlb", "itlb", "stlb")


def physical_memory() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _gib(n: int) -> str:
    return f"{n / 2**30:.3g} GiB"


def check_fits(sc: dict, ncpus: int, ranks: int, where: str) -> None:
    """Raise EmuError naming the largest contributor if the busiest rank cannot fit."""
    m = sc["machine"]
    cpus_here = -(-ncpus // ranks)
    per_cpu = sum(m[f"{t}_entries"] // m[f"{t}_ways"] for t in TLBS) * BYTES_PER_TLB_SET \
        + m["pcid_slots"] * BYTES_PER_PCID_SLOT
    parts = {
        "machine.dram_pages": (m["dram_pages"] + m["cxl_pages"]) * BYTES_PER_FRAME,
        "process.*.mappings.*.pages": BYTES_PER_VPAGE * sum(
            mp["pages"] for p in sc["process"] for mp in p["mappings"]),
        "--cpus with machine.*tlb_* and machine.pcid_slots": cpus_here * per_cpu,
        "process.*.threads.*.count": BYTES_PER_THREAD * sum(
            t["count"] or ncpus for p in sc["process"] for t in p["threads"]),
    }
    need, have = sum(parts.values()), physical_memory()
    if need > have:
        key = max(parts, key=parts.get)
        raise EmuError(f"needs about {_gib(need)} on rank 0, more than this machine's "
                       f"{_gib(have)} (mostly {key})", where)
