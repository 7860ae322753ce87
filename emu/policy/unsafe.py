"""A deliberately unsafe policy: every batched unmap (reclaim, migration), read-write
included, skips its flush, and no flush is ever done on reuse. It exists to prove that
the safety oracle catches what a wrong policy does."""

from emu.policy.base import ShootdownPolicy


class UnsafePolicy(ShootdownPolicy):
    name = "unsafe"

    def set_tlb_ubc_flush_pending(self, batch, mm, writable: bool) -> None:
        self.k.inc_mm_tlb_gen(mm.id)           # the generation moves; no CPU is told
        self.count("flushes_skipped")

    def try_to_unmap_flush(self, task, batch):
        batch.cpumask = set()
        return
        yield
