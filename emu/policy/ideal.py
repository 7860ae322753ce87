"""The ideal policy: the lower bound every policy is measured against.

Every batched unmap (reclaim, migration), read-only or writable, is deferred. Using
global knowledge, the coordinator asks the CPUs in the batch's mask which of the
unmapped frames they still cache (a HOLDS query: simulation bookkeeping, not an IPI),
and later sends IPIs only to those, at the last moment before a stale entry could do
harm: before a writable page is freed (a store through it would be lost), before a
page is reused, before its content changes (a write fault or write() on the file, from
any mm), and before its mm is unmapped or remapped. A CPU that receives an ideal flush
no longer caches any of the pending frames.

Holders are as of the query (one window after the unmap, when no CPU can fill a new
entry for the page); entries evicted later are not tracked, so the bound is slightly
pessimistic, never unsafe.
"""

from emu import protocol as P
from emu.engine.process import Wait
from emu.policy.base import ShootdownPolicy, TlbUbc
from emu.protocol import FULL, NO_MM


class IdealPolicy(ShootdownPolicy):
    name = "ideal"

    def __init__(self, kernel):
        super().__init__(kernel)
        self.pending = {}        # pfn -> (query token, candidate CPUs, mm ids, file id)
        self.holders = {}        # pfn -> {cpu: cpu's flush epoch when it answered}
        self.queries = {}        # token -> CPUs that have not answered yet
        self.cpu_epoch = [0] * kernel.ncpus
        self._tokens = 0
        for key in ("pages_deferred", "holds_queries", "ideal_flush_targets"):
            self.stats[key] = 0

    # -- deferral -------------------------------------------------------------------------
    def set_tlb_ubc_flush_pending(self, batch, mm, writable: bool) -> None:
        super().set_tlb_ubc_flush_pending(batch, mm, False)
        batch.folio_writable |= writable
        batch.folio_mms.add(mm.id)

    def folio_unmapped(self, batch: TlbUbc, folio) -> bool:
        if batch.folio_ro:
            batch.luf_folios.append((folio.pfn, sorted(batch.folio_mms), batch.folio_writable,
                                     sorted(batch.folio_ro)))
        batch.folio_ro, batch.folio_mms, batch.folio_writable = set(), set(), False
        return False

    def try_to_unmap_flush(self, task, batch: TlbUbc):
        folios, batch.luf_folios, batch.cpumask = batch.luf_folios, [], set()
        if not folios:
            return
        self._tokens += 1
        token = ("holds", self._tokens)
        per_cpu = {}
        for pfn, mms, _, cpus in folios:
            folio = self.k.folios[pfn]
            self.pending[pfn] = (token, set(cpus), mms, folio.file)
            self.holders[pfn] = {}
            for c in cpus:
                per_cpu.setdefault(c, []).append(pfn)
        self.queries[token] = set(per_cpu)
        for c, pfns in sorted(per_cpu.items()):
            self.k.coord.send(c, P.HOLDS_QUERY, (token[1], pfns), task.t)
        self.stats["holds_queries"] += len(per_cpu)
        self.stats["pages_deferred"] += len(folios)
        writable = [pfn for pfn, _, w, _ in folios if w]
        if writable:                      # a store through a stale entry would be lost
            yield from self._flush_frames(task, writable)

    def holds_reply(self, token: int, pfns, cpu: int, t: int) -> None:
        key = ("holds", token)
        for pfn in pfns:
            if pfn in self.holders and self.pending.get(pfn, (None,))[0] == key:
                self.holders[pfn][cpu] = self.cpu_epoch[cpu]
        waiting = self.queries.get(key)
        if waiting is not None:
            waiting.discard(cpu)
            if not waiting:
                del self.queries[key]
                self.k.coord.runner.notify(key, t)

    def free_pending(self, folio, luf_key: int) -> bool:
        return folio.pfn in self.pending

    def zone_flushed(self, node: int, zone_ugen: int) -> bool:
        return False                      # pending pages are flushed one by one when taken

    # -- the last moments -----------------------------------------------------------------
    def _flush_frames(self, task, pfns):
        """IPI exactly the CPUs that still cache any of these frames."""
        for pfn in pfns:
            token = self.pending.get(pfn, (None,))[0]
            if token in self.queries:
                yield Wait(token)
        targets = sorted({c for pfn in pfns if pfn in self.holders
                          for c, epoch in self.holders[pfn].items()
                          if epoch == self.cpu_epoch[c]})
        if targets:
            self.stats["ideal_flush_targets"] += len(targets)
            task.source = "ideal"
            for c in targets:
                self.cpu_epoch[c] += 1
            yield from self.k.shootdown(task, targets, NO_MM, 0, FULL, 0, False)

    def _done(self, pfn: int) -> None:
        self.pending.pop(pfn, None)
        self.holders.pop(pfn, None)

    def take_off(self, task, pfn: int):
        yield from self.zone_take_off(task, 0, [pfn])

    def zone_take_off(self, task, node: int, pfns):
        mine = [pfn for pfn in pfns if pfn in self.pending]
        if mine:
            yield from self._flush_frames(task, mine)
            for pfn in mine:
                self._done(pfn)

    def _flush_where(self, task, match):
        pfns = sorted(pfn for pfn, info in self.pending.items() if match(info))
        if pfns:
            yield from self._flush_frames(task, pfns)

    def flush_tlb_batched_pending(self, task, mm):
        """The kernel's flush of the mm also clears the frames only this mm mapped, on
        every CPU of its mask (credited as LUF v12 credits it, arch_mm_mark_ugen())."""
        if mm.tlb_flush_batched_pending == mm.tlb_flush_batched_flushed:
            return
        cpus = set(self.k.cpumask(mm.id))
        yield from super().flush_tlb_batched_pending(task, mm)
        for pfn, info in self.pending.items():
            if info[2] == [mm.id]:
                for c in cpus:
                    self.holders[pfn].pop(c, None)

    def tlb_end_vma(self, task, vma):
        yield from self._flush_where(task, lambda info: vma.mm in info[2])

    def write_fault(self, task, mm, folio):
        yield from self._flush_where(task, lambda info: mm.id in info[2]
                                     or (folio.file >= 0 and info[3] == folio.file))

    def file_write(self, task, file):
        yield from self._flush_where(task, lambda info: info[3] == file.id)

    def folio_not_freed(self, task, folio, luf_key: int):
        if folio.pfn in self.pending:
            yield from self._flush_frames(task, [folio.pfn])
            self._done(folio.pfn)
