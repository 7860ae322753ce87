"""LUF (Lazy Unmap Flush), as the v12 patch series works (docs/luf.md maps each piece).

Only batched unmaps from reclaim and migration qualify, and only folios whose every PTE
was read-only: their CPUs go into a keyed luf_batch {cpumask, ugen} instead of the
batch flushed now. The freed pages carry the key (folded into a per-zone batch when
they reach the buddy list); the pending state is also folded into the owning mm_struct
and address_space. The flush happens when a page is taken off the allocator (only to
CPUs whose ugen_done is older than the batch: a partial shootdown, often empty), or
when something could make a stale read wrong: a write fault in an mm with pending
state, write()/truncate of a file with pending state, munmap/mprotect/madvise on an mm
with pending state, a reclaim candidate that was not freed after all.
"""

from emu.engine.process import Wait
from emu.policy.base import ShootdownPolicy, TlbUbc
from emu.policy.luf_batch import LufBatch, LufTable, ugen_before
from emu.protocol import FULL, NO_MM

ZONE_KEY = -2


class LufPolicy(ShootdownPolicy):
    name = "luf"
    check_file_on_mkwrite = False      # the posted design: write faults check the mm only

    def __init__(self, kernel):
        super().__init__(kernel)
        self.table = LufTable(kernel.ncpus)
        self.page_key = {}                       # pfn -> luf key (or ZONE_KEY)
        self.zone_batch = [LufBatch() for _ in range(kernel.nodes)]
        self.enabled = not kernel.cfg["init_on_free"]
        self.inflight = {}                       # cpu -> (ugen, key) of a flush under way
        self._active: set = set()
        self._flights = 0
        for key in ("pages_deferred", "takeoff_flushes", "takeoff_no_flush",
                    "targets_skipped_done", "partial_shootdown_targets", "targets_in_flight"):
            self.stats[key] = 0

    # -- deferral (rmap.c / vmscan.c / migrate.c) -----------------------------------------
    def folio_unmapped(self, batch: TlbUbc, folio) -> None:
        if not self.enabled or batch.folio_writable or not batch.folio_ro:
            super().folio_unmapped(batch, folio)
            return
        batch.luf_cpumask |= batch.folio_ro
        batch.luf_folios.append((folio.pfn, sorted(batch.folio_mms)))
        batch.folio_ro, batch.folio_mms = set(), set()

    def try_to_unmap_flush(self, task, batch: TlbUbc):
        luf_mask, luf_folios = batch.luf_cpumask, batch.luf_folios
        batch.luf_cpumask, batch.luf_folios = set(), []
        flushed = set(batch.cpumask)
        yield from super().try_to_unmap_flush(task, batch)
        if flushed:                      # the normal batched flush: LUF sees it
            self.table.mark_done(flushed, self.table.ugen)
        if not luf_folios:
            return
        key, ugen = self.table.add(luf_mask)
        pending = LufBatch(luf_mask, ugen)
        k = self.k
        for pfn, mms in luf_folios:
            self.page_key[pfn] = key
            folio = k.folios[pfn]
            owners = [k.mms[m] for m in mms]
            if folio.file >= 0:
                owners.append(k.files[folio.file])
            for owner in owners:
                if owner.luf is None:
                    owner.luf = LufBatch()
                owner.luf.fold(pending, self.table.bits)
        self.stats["pages_deferred"] += len(luf_folios)

    def set_tlb_ubc_flush_pending(self, batch, mm, writable: bool) -> None:
        super().set_tlb_ubc_flush_pending(batch, mm, writable)
        batch.folio_mms.add(mm.id)

    def free_pending(self, folio) -> bool:
        return folio.pfn in self.page_key

    def luf_pending_pages(self) -> int:
        return len(self.page_key)

    def page_on_buddy(self, pfn: int) -> None:
        key = self.page_key.get(pfn)
        if key is not None and key != ZONE_KEY:
            self.zone_batch[self.k.layout.node_of(pfn)].fold(self.table.batches[key],
                                                              self.table.bits)
            self.page_key[pfn] = ZONE_KEY

    # -- the flush points -----------------------------------------------------------------
    def _batch_of(self, pfn: int) -> LufBatch:
        key = self.page_key.pop(pfn)
        return self.zone_batch[self.k.layout.node_of(pfn)] if key == ZONE_KEY else \
            self.table.batches[key]

    def luf_flush(self, task, batch: LufBatch, reason: str):
        """Partial shootdown: IPI only the CPUs not known to have flushed since.

        A CPU whose flush to a new enough ugen is already in flight is waited for, not
        sent another IPI (docs/design.md: in the kernel that flush would be over long
        before a second allocation; in windows it is not)."""
        targets = self.table.pending_cpus(batch)
        self.stats["targets_skipped_done"] += len(batch.cpumask) - len(targets)
        waits, new = set(), []
        for c in targets:
            flight = self.inflight.get(c)
            if flight is not None and not ugen_before(flight[0], batch.ugen, self.table.bits):
                waits.add(flight[1])
            else:
                new.append(c)
        self.stats["targets_in_flight"] += len(targets) - len(new)
        if new:
            self.stats["partial_shootdown_targets"] += len(new)
            self.count(f"flush_{reason}")
            task.source = "luf_takeoff" if reason == "takeoff" else "luf_hook"
            ugen = self.table.ugen      # a full flush covers every batch deferred so far
            self._flights += 1
            key = ("luf-flush", self._flights)
            for c in new:
                self.inflight[c] = (ugen, key)
            self._active.add(key)
            yield from self.k.shootdown(task, new, NO_MM, 0, FULL, 0, False)
            self.table.mark_done(new, ugen)
            for c in new:
                if self.inflight.get(c, (0, None))[1] == key:
                    del self.inflight[c]
            self._active.discard(key)
            self.k.coord.runner.notify(key, task.t)
        for key in sorted(waits, key=lambda k: k[1]):
            if key in self._active:
                yield Wait(key)
        return bool(new)

    def take_off(self, task, pfn: int, pending: bool):
        if not pending or pfn not in self.page_key:
            return
        did = yield from self.luf_flush(task, self._batch_of(pfn), "takeoff")
        self.stats["takeoff_flushes" if did else "takeoff_no_flush"] += 1

    def _flush_owner(self, task, owner, reason: str):
        batch = owner.luf if owner is not None else None
        if batch is not None and not batch.empty():
            yield from self.luf_flush(task, batch, reason)
            if owner.luf is batch and not self.table.pending_cpus(batch):
                owner.luf = None

    def mm_change(self, task, mm):
        yield from self._flush_owner(task, mm, "mm_change")

    def write_fault(self, task, mm, folio):
        yield from self._flush_owner(task, mm, "write_fault")
        if self.check_file_on_mkwrite and folio.file >= 0:
            yield from self._flush_owner(task, self.k.files[folio.file], "mkwrite_file")

    def file_write(self, task, file):
        yield from self._flush_owner(task, file, "file_write")

    def folio_not_freed(self, task, batch, folio):
        if folio.pfn in self.page_key:
            yield from self.luf_flush(task, self._batch_of(folio.pfn), "not_freed")


class LufFixedPolicy(LufPolicy):
    """LUF plus one hook the posted series lacks: a write fault on a file page also
    flushes the file's pending CPUs (closes the 'second writable mmap' hazard)."""

    name = "luf-fixed"
    check_file_on_mkwrite = True
