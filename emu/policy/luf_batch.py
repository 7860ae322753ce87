"""LUF's bookkeeping, free of MPI and of the rest of the kernel (unit-testable).

ugen is the global unmap generation (an unsigned long in the patches, compared with
wrap-around like jiffies; `luf_ugen`, patches 7 and 21); luf_batch is the keyed table of
{cpumask, ugen} (`NR_LUF_BATCH`, keys from their own counter `luf_kgen`, patch 16); a key
that is reused folds the new batch into the old one (`__fold_luf_batch`, patches 16-17);
ugen_done is each CPU's progress (`arch_tlbbatch_*` in arch/x86/mm/tlb.c, patch 17).
"""

NR_LUF_BATCH = 1 << 16          # (1 << (sizeof(short) * 8)) in v12 (patch 20's context)
LUF_UGEN_INIT = 2               # "luf_ugen will start with 2 so that 1 can be ... passed"
SHORT_BITS = 16                 # keys and a page's zone_ugen are unsigned shorts


def ugen_before(a: int, b: int, bits: int = 64) -> bool:
    """a is older than b, modulo 2**bits (time_before() style)."""
    half = 1 << (bits - 1)
    return 0 < ((b - a) & ((1 << bits) - 1)) < half


def next_ugen(ugen: int, bits: int = 64) -> int:
    """ugen + 1, skipping values whose low 16 bits are zero ('invalid', patch 21)."""
    mask = (1 << bits) - 1
    ugen = (ugen + 1) & mask
    return ugen if ugen & ((1 << SHORT_BITS) - 1) else (ugen + 1) & mask


def prev_ugen(ugen: int, bits: int = 64) -> int:
    mask = (1 << bits) - 1
    ugen = (ugen - 1) & mask
    return ugen if ugen & ((1 << SHORT_BITS) - 1) else (ugen - 1) & mask


def cpumask_bits(cpus) -> int:
    """A set of CPUs as bits (struct cpumask): bit c for CPU c."""
    bits = 0
    for c in cpus:
        bits |= 1 << c
    return bits


def cpumask_cpus(bits: int) -> set[int]:
    """The CPUs whose bit is set."""
    cpus = set()
    while bits:
        low = bits & -bits
        cpus.add(low.bit_length() - 1)
        bits ^= low
    return cpus


class LufBatch:
    """{cpumask, ugen}: the CPUs that may still hold stale entries, as of ugen (0: none).

    The mask is kept as bits, as the kernel keeps a struct cpumask: the table holds up to
    NR_LUF_BATCH entries for the whole run, and a Python set each made the coordinator's
    memory grow by about 1 KB per deferred batch (docs/performance.md, session 14)."""

    __slots__ = ("cpu_bits", "ugen")

    def __init__(self, cpumask=(), ugen: int = 0):
        self.cpu_bits = cpumask_bits(cpumask)
        self.ugen = ugen

    @property
    def cpumask(self) -> set[int]:
        return cpumask_cpus(self.cpu_bits)

    def add_cpus(self, cpus) -> None:
        self.cpu_bits |= cpumask_bits(cpus)

    def empty(self) -> bool:
        return not self.cpu_bits


class LufTable:
    """The global luf_batch table, the ugen and key counters, and per-CPU ugen_done."""

    def __init__(self, ncpus: int, bits: int = 64, nr_keys: int = NR_LUF_BATCH):
        self.bits, self.nr_keys = bits, nr_keys
        self.ugen = LUF_UGEN_INIT
        self.kgen = 1                            # luf_kgen = ATOMIC_INIT(1)
        self.batches: dict[int, LufBatch] = {}
        self.ugen_done = [LUF_UGEN_INIT - 1] * ncpus

    def new_ugen(self) -> int:
        """new_luf_ugen(): also what tlb_flush_start() takes before every flush LUF sees."""
        self.ugen = next_ugen(self.ugen, self.bits)
        return self.ugen

    def new_key(self) -> int:
        """new_luf_key(): the next slot of the table, never 0."""
        self.kgen += 1
        key = self.kgen % self.nr_keys
        if not key:
            self.kgen += 1
            key = self.kgen % self.nr_keys
        return key

    def diet(self, cpumask, ugen: int) -> set:
        """arch_tlbbatch_diet(): the CPUs whose ugen_done is still older than ugen."""
        if not ugen:
            return set(cpumask)
        return {c for c in cpumask if ugen_before(self.ugen_done[c], ugen, self.bits)}

    def pending_cpus(self, batch: LufBatch) -> list[int]:
        """The partial shootdown's targets (empty: arch_tlbbatch_check_done() holds)."""
        return sorted(self.diet(batch.cpumask, batch.ugen))

    def fold(self, dst: LufBatch, cpumask, ugen: int) -> None:
        """__fold_luf_batch(): a newer ugen replaces the old one, after dropping from the
        mask the CPUs already done as of the old one; the masks are OR-ed."""
        if not dst.ugen or ugen_before(dst.ugen, ugen, self.bits):
            if dst.ugen:
                dst.cpu_bits = cpumask_bits(self.diet(dst.cpumask, dst.ugen))
            dst.ugen = ugen
        dst.add_cpus(cpumask)

    def add(self, cpumask) -> tuple[int, int]:
        """fold_unmap_luf(): record a deferred batch under a new key; returns (key, ugen)."""
        ugen = self.new_ugen()
        key = self.new_key()
        self.fold(self.batches.setdefault(key, LufBatch()), cpumask, ugen)
        return key, ugen

    def mark_done(self, cpus, ugen: int) -> None:
        """arch_tlbbatch_mark_ugen()/arch_mm_mark_ugen() after a flush started at ugen."""
        for c in cpus:
            if ugen_before(self.ugen_done[c], ugen, self.bits):
                self.ugen_done[c] = ugen
