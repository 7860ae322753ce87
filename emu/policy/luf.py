"""LUF (Lazy Unmap Flush) as the v12 series does it (docs/luf.md maps each piece to
its patch and function).

Only batched unmaps from reclaim and migration qualify, and only folios whose every PTE
was read-only (can_luf). Each such PTE clear folds mm_cpumask(mm) into the mm's and the
file's own batch with a new ugen (fold_luf_batch_mm). Before the normal batched flush,
the read-only CPUs not flushed now get a keyed luf_batch {cpumask, ugen}
(fold_unmap_luf); the freed pages carry the key on a pcp list, and fold it into the
zone's batch when they reach the buddy. A flush LUF sees takes a new ugen before it
starts and marks its CPUs done to it after (tlb_flush_start/end). The deferred flush
happens, to the CPUs not yet done, when a page leaves the allocator (a pcp page alone;
buddy pages take the whole zone batch, once, and wait for a flush of it already under
way), at the end of a fault in a writable VMA, at the end of a VMA walk (munmap,
mprotect, madvise, the NUMA scan), on write()/truncate of the file, and when an
unmapped folio is not freed after all.

`kernel.luf_test_disable` (test-only) names flush points to skip, to show that each one
is needed; see docs/luf.md.
"""

from emu.engine.process import Wait
from emu.policy.base import ShootdownPolicy, TlbUbc
from emu.policy.luf_batch import LUF_UGEN_INIT, LufBatch, LufTable, next_ugen, prev_ugen, ugen_before
from emu.protocol import FULL, NO_MM

ZONE_UGEN_INIT = 2                        # "zone_ugen will start with 2" (patch 21)
TEST_POINTS = ("takeoff", "fault", "tlb_end_vma", "file_write", "not_freed", "switch",
               "batched_pending_credit")


class LufZone:
    """A zone's LUF state (struct zone, patch 21)."""

    __slots__ = ("zone_ugen", "zone_ugen_done", "luf_ugen", "batch")

    def __init__(self):
        self.zone_ugen = ZONE_UGEN_INIT
        self.zone_ugen_done = ZONE_UGEN_INIT - 1
        self.luf_ugen = LUF_UGEN_INIT - 1
        self.batch: set = set()


def vma_maywrite(vma) -> bool:
    """VM_WRITE | VM_MAYWRITE: a private mapping may always become writable; a shared
    one only if its file was opened for writing (emu: it was first mapped writable; an
    mprotect to PROT_WRITE of a shared mapping of a read-only file fails in Linux)."""
    return not vma.shared or "w" in vma.prot


def vma_mapping(k, vma):
    """The address_space luf_flush_vma()/handle_mm_fault() also flush: VM_SHARED files."""
    return k.files[vma.file] if vma.shared and vma.file >= 0 else None


class LufPolicy(ShootdownPolicy):
    name = "luf"

    def __init__(self, kernel):
        super().__init__(kernel)
        cfg = kernel.cfg
        self.table = LufTable(kernel.ncpus)
        self.pcp_key = {}                        # pfn -> luf key (on a pcp list)
        self.zone_ugen_of = {}                   # pfn -> zone_ugen (on the pend_list)
        self.zones = [LufZone() for _ in range(kernel.nodes)]
        self.enabled = not (cfg["init_on_free"] or cfg["kasan"])      # can_luf_init()
        self.skip = {p for p in cfg["luf_test_disable"].split(",") if p}
        for key in ("pages_deferred", "takeoff_flushes", "takeoff_no_flush",
                    "zone_batch_takes", "targets_skipped_done", "partial_shootdown_targets",
                    "zone_waits"):
            self.stats[key] = 0

    # -- deferral (rmap.c, vmscan.c, migrate.c) ---------------------------------------------
    def set_tlb_ubc_flush_pending(self, batch: TlbUbc, mm, writable: bool) -> None:
        super().set_tlb_ubc_flush_pending(batch, mm, writable)
        if self.enabled and not batch.folio_writable:     # can_luf_test() still holds
            self._fold_owner(mm, mm)
            if batch.folio_file >= 0:
                self._fold_owner(self.k.files[batch.folio_file], mm)

    def _fold_owner(self, owner, mm) -> None:
        """fold_luf_batch_mm() (patch 19): mm_cpumask(mm) into the owner, a new ugen."""
        if owner.luf is None:
            owner.luf = LufBatch()
        owner.luf.add_cpus(self.k.cpumask(mm.id))
        owner.luf.ugen = self.table.new_ugen()

    def folio_unmapped(self, batch: TlbUbc, folio) -> bool:
        if not self.enabled or batch.folio_writable:
            return super().folio_unmapped(batch, folio)
        batch.luf_cpumask |= batch.folio_ro                # tlb_ubc_luf
        batch.folio_ro, batch.folio_mms = set(), set()
        return True

    def fold_unmap_luf(self, batch: TlbUbc) -> int:
        """fold_unmap_luf() (patch 16): the read-only CPUs the coming flush does not
        reach (arch_tlbbatch_done()) become a keyed batch; returns its key (0: none)."""
        mask = batch.luf_cpumask - batch.cpumask
        batch.luf_cpumask = set()
        if not mask:
            return 0
        key, _ = self.table.add(mask)
        return key

    def try_to_unmap_flush(self, task, batch: TlbUbc):
        """The normal batched flush, credited: ugen taken before, marked after."""
        cpus = set(batch.cpumask)
        ugen = self.table.new_ugen() if cpus else 0
        yield from super().try_to_unmap_flush(task, batch)
        if cpus:
            self.table.mark_done(cpus, ugen)

    def flush_batch(self, task, batch: TlbUbc):
        key = self.fold_unmap_luf(batch)
        yield from self.try_to_unmap_flush(task, batch)
        return key

    def free_pending(self, folio, luf_key: int) -> bool:
        if not luf_key:
            return False
        self.pcp_key[folio.pfn] = luf_key
        self.stats["pages_deferred"] += 1
        return True

    def flush_tlb_batched_pending(self, task, mm):
        """Credited too (arch_mm_mark_ugen(), patch 17): mm_cpumask(mm) is done."""
        if mm.tlb_flush_batched_pending == mm.tlb_flush_batched_flushed:
            return
        ugen = self.table.new_ugen()
        yield from super().flush_tlb_batched_pending(task, mm)
        if "batched_pending_credit" not in self.skip:
            self.table.mark_done(self.k.cpumask(mm.id), ugen)

    # -- page_alloc.c (patch 21) -----------------------------------------------------------
    def page_on_buddy(self, node: int, pfn: int) -> int:
        """__free_one_page() with a luf_key: the page takes the zone's current zone_ugen
        and the key's batch folds into the zone batch (update_zone_batch())."""
        zone = self.zones[node]
        lb = self.table.batches[self.pcp_key.pop(pfn)]
        zone.batch |= lb.cpumask
        if ugen_before(zone.luf_ugen, lb.ugen, self.table.bits):
            zone.luf_ugen = lb.ugen
        self.zone_ugen_of[pfn] = zone.zone_ugen
        return zone.zone_ugen

    def zone_flushed(self, node: int, zone_ugen: int) -> bool:
        return not ugen_before(self.zones[node].zone_ugen_done, zone_ugen, self.table.bits)

    def luf_pending_pages(self) -> int:
        """Free pages still carrying a LUF key or zone generation (for the timeline)."""
        return len(self.pcp_key) + len(self.zone_ugen_of)

    def take_off(self, task, pfn: int):
        """A pending page off a pcp list: luf_takeoff_check_and_fold(NULL, page), then
        luf_takeoff_end(): the key's CPUs not done yet, if any."""
        lb = self.table.batches[self.pcp_key.pop(pfn)]
        if "takeoff" in self.skip:
            return
        did = yield from self._flush_diet(task, lb, "takeoff")
        self.stats["takeoff_flushes" if did else "takeoff_no_flush"] += 1

    def zone_take_off(self, task, node: int, pfns):
        """Pending pages off the buddy: luf_takeoff_check_and_fold(zone, page) for each,
        then luf_takeoff_end(zone). The first page of the zone's current generation takes
        the zone batch whole and resets it; pages of an older generation wait for the
        task already flushing it (wait_zone_ugen_done())."""
        zone, bits = self.zones[node], self.table.bits
        mine = wait = luf_ugen = 0
        cpus: set = set()
        for pfn in pfns:
            zu = self.zone_ugen_of.pop(pfn)
            if mine or not ugen_before(zone.zone_ugen_done, zu, bits):
                continue
            if zu != zone.zone_ugen:
                if not wait or ugen_before(wait, zu, bits):
                    wait = zu
                continue
            wait, mine, luf_ugen = prev_ugen(zone.zone_ugen, bits), zone.zone_ugen, zone.luf_ugen
            zone.zone_ugen = next_ugen(zone.zone_ugen, bits)
            cpus, zone.batch = zone.batch, set()
            self.stats["zone_batch_takes"] += 1
        if cpus and "takeoff" not in self.skip:
            did = yield from self._flush_diet(task, LufBatch(cpus, luf_ugen), "takeoff_zone")
            self.stats["takeoff_flushes" if did else "takeoff_no_flush"] += 1
        if wait:
            before = task.t
            while ugen_before(zone.zone_ugen_done, wait, bits):
                self.stats["zone_waits"] += 1
                yield Wait(("zone_ugen", node))
            self.k.coord.flush_waited(task, task.t - before)
        if mine:
            zone.zone_ugen_done = mine
            self.k.coord.runner.notify(("zone_ugen", node), task.t)

    # -- the flushes -------------------------------------------------------------------------
    def _flush(self, task, cpus, reason: str):
        """try_to_unmap_flush() of LUF's own batch: a new ugen before, marked after."""
        ugen = self.table.new_ugen()
        self.stats["partial_shootdown_targets"] += len(cpus)
        self.count(f"flush_{reason}")
        task.source = "luf_takeoff" if reason.startswith("takeoff") else \
            "luf_switch" if reason == "switch" else "luf_hook"
        yield from self.k.shootdown(task, sorted(cpus), NO_MM, 0, FULL, 0, False)
        self.table.mark_done(cpus, ugen)

    def _flush_diet(self, task, lb: LufBatch, reason: str):
        """The partial shootdown: only the CPUs whose ugen_done is older than the batch
        (arch_tlbbatch_diet()); returns whether any was left to flush."""
        cpus = lb.cpumask
        targets = self.table.diet(cpus, lb.ugen)
        self.stats["targets_skipped_done"] += len(cpus) - len(targets)
        if not targets:
            return False
        yield from self._flush(task, targets, reason)
        return True

    def _flush_owner(self, task, owner, reason: str):
        """luf_flush_mm()/luf_flush_mapping() (patches 19, 20)."""
        if owner is not None and owner.luf is not None:
            yield from self._flush_diet(task, owner.luf, reason)

    def _flush_vma(self, task, vma, reason: str):
        """luf_flush_vma(): the file's pending CPUs for a VM_SHARED file, then the mm's."""
        yield from self._flush_owner(task, vma_mapping(self.k, vma), reason)
        yield from self._flush_owner(task, self.k.mms[vma.mm], reason)

    def tlb_end_vma(self, task, vma):
        if "tlb_end_vma" not in self.skip:
            yield from self._flush_vma(task, vma, "tlb_end_vma")

    def fault(self, task, vma, write: bool, end: bool):
        """The end of handle_mm_fault() (patches 16, 19, 20): any fault in a VM_WRITE or
        VM_MAYWRITE VMA, or any write fault. emu also calls it before the fault
        (docs/luf.md); `flush_fault_end` counts the flushes only the end call sent."""
        if "fault" not in self.skip and (write or vma_maywrite(vma)):
            yield from self._flush_vma(task, vma, "fault_end" if end else "fault")

    def finish_task_switch(self, task, mm):
        """finish_task_switch() -> luf_flush_mm(rq->prev_mm) (patches 16, 19): the mm
        idle borrowed, flushed from the switching CPU, dieted like every owner flush."""
        yield from self._flush_owner(task, mm, "switch")

    def luf_pending_mms(self) -> int:
        """The mms whose batch still has a CPU not done (arch_tlbbatch_diet() would
        leave one): the CPUs send finish_task_switch's flush only for these."""
        bits = 0
        if "switch" in self.skip:
            return bits
        for mm in self.k.mms:
            if mm.luf is not None and self.table.diet(mm.luf.cpumask, mm.luf.ugen):
                bits |= 1 << mm.id
        return bits

    def file_write(self, task, file):
        if "file_write" not in self.skip:
            yield from self._flush_owner(task, file, "file_write")

    def folio_not_freed(self, task, folio, luf_key: int):
        """luf_flush(fold_unmap_luf()) for a can_luf folio kept (patch 24): the whole
        key's mask, no diet."""
        if luf_key and "not_freed" not in self.skip:
            cpus = self.table.batches[luf_key].cpumask
            if cpus:
                yield from self._flush(task, set(cpus), "not_freed")
