"""include/linux/mm_types.h: mm_struct, address_space and per-frame state."""

from dataclasses import dataclass, field

from emu.mm.mmap_lock import MmLocks
from emu.mm.tlb import TRIM_INTERVAL_NS

PROT_BITS = {"none": 0, "r": 1, "rw": 3, "rx": 5}   # PROT_READ 1, PROT_WRITE 2, PROT_EXEC 4


@dataclass
class MmStruct:
    """One process's address space: VMAs, flush generation, batched-flush bookkeeping."""
    id: int
    name: str
    vmas: list                       # VmaLayout of this mm, in address order
    threads: list = field(default_factory=list)   # (tid, cpu)
    tlb_flush_batched_pending: int = 0   # mm->tlb_flush_batched: pending ...
    tlb_flush_batched_flushed: int = 0   # ... and flushed halves
    numa_scan_offset: int = 0
    locks: MmLocks = field(default_factory=MmLocks)   # mmap_lock and the VMAs' locks
    tlb_flush_pending: int = 0       # mmu_gathers in progress (mm_tlb_flush_nested())
    luf: object = None               # policy state folded into the mm (LUF)
    next_trim_cpumask: int = TRIM_INTERVAL_NS   # mm->context: jiffies + HZ at creation (t = 0)


@dataclass
class AddressSpace:
    """A file's page cache."""
    id: int
    name: str
    shmem: bool = False                          # tmpfs: its pages are swap-backed
    pages: dict = field(default_factory=dict)    # index -> pfn
    nrpages: int = 0
    luf: object = None


@dataclass
class Folio:
    """Per-frame state the kernel keeps in struct page/folio (order-0 only)."""
    pfn: int
    cid: int = -1                    # content: file page or anonymous page
    anon: bool = True
    file: int = -1
    index: int = 0
    mapcount: list = field(default_factory=list)   # vpages mapping it (reverse map)
    lru: str = ""                    # "", "active", "inactive"
    referenced: bool = False         # PG_referenced
    locked: bool = False             # PG_locked: under reclaim or migration
    dirty: bool = False              # PG_dirty: a file page newer than the disk's copy
    writeback_until: int = 0         # PG_writeback: being written back until then
    exec: bool = False               # mapped executable (protected from deactivation)
    numa_scan_ns: int = -1           # when the NUMA scanner last made it PROT_NONE
