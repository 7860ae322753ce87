"""LUF's bookkeeping, free of MPI and of the rest of the kernel (unit-testable).

ugen is the global unmap generation (an unsigned long in the patches, compared with
wrap-around like jiffies); luf_batch is the keyed table of {cpumask, ugen}; a key that
is reused folds the new batch into the old one (OR the masks, keep the newer ugen).
"""

NR_LUF_BATCH = 1 << 15          # (1 << (sizeof(short) * 8 - 1)) in the patches


def ugen_before(a: int, b: int, bits: int = 64) -> bool:
    """a is older than b, modulo 2**bits (time_before() style)."""
    half = 1 << (bits - 1)
    return 0 < ((b - a) & ((1 << bits) - 1)) < half


class LufBatch:
    """{cpumask, ugen}: the CPUs that may still hold stale entries, as of ugen."""

    __slots__ = ("cpumask", "ugen")

    def __init__(self, cpumask=(), ugen: int = 0):
        self.cpumask = set(cpumask)
        self.ugen = ugen

    def fold(self, other: "LufBatch", bits: int = 64) -> None:
        """OR the masks, keep the newer ugen."""
        self.cpumask |= other.cpumask
        if ugen_before(self.ugen, other.ugen, bits):
            self.ugen = other.ugen

    def empty(self) -> bool:
        return not self.cpumask


class LufTable:
    """The global luf_batch table and the per-CPU ugen_done."""

    def __init__(self, ncpus: int, bits: int = 64, nr_keys: int = NR_LUF_BATCH):
        self.bits, self.nr_keys = bits, nr_keys
        self.ugen = 0
        self.batches: dict[int, LufBatch] = {}
        self.ugen_done = [0] * ncpus

    def new_ugen(self) -> int:
        self.ugen = (self.ugen + 1) & ((1 << self.bits) - 1)
        return self.ugen

    def add(self, cpumask) -> tuple[int, int]:
        """Record a deferred batch; returns (key, ugen). A used key is folded into."""
        ugen = self.new_ugen()
        key = ugen % self.nr_keys
        batch = LufBatch(cpumask, ugen)
        if key in self.batches:
            self.batches[key].fold(batch, self.bits)
        else:
            self.batches[key] = batch
        return key, ugen

    def pending_cpus(self, batch: LufBatch) -> list[int]:
        """The partial shootdown: CPUs whose ugen_done is older than the batch."""
        return sorted(c for c in batch.cpumask if ugen_before(self.ugen_done[c], batch.ugen,
                                                                self.bits))

    def mark_done(self, cpus, ugen: int) -> None:
        for c in cpus:
            if ugen_before(self.ugen_done[c], ugen, self.bits):
                self.ugen_done[c] = ugen
