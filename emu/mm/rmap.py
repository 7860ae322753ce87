"""mm/rmap.c: try_to_unmap()/try_to_migrate() with TTU_BATCH_FLUSH.

Each PTE mapping the folio is cleared (or replaced by a migration entry); when another
CPU may cache it the flush is deferred into the task's batch (set_tlb_ubc_flush_pending),
otherwise it is flushed on the spot. An inaccessible PTE (a NUMA hint) needs no flush.
"""

from emu.mm.replica import make_pte, pte_write
from emu.mm.tlb import flush_tlb_mm_range


def try_to_unmap(k, task, batch, pfn: int, migration: bool = False):
    """Unmap every mapping of the frame; returns ([(vpage, writable)] for remapping,
    whether the policy may free it with its flush deferred: can_luf)."""
    folio = k.folios[pfn]
    policy = k.policy
    batch.folio_file = folio.file
    mappings = []
    for vp in list(folio.mapcount):
        mm = k.mms[k.mm_of[vp]]
        pte = k.unmap_pte(vp)
        writable = pte_write(pte)
        mappings.append((vp, writable))
        if migration:
            k.set_pte(vp, make_pte(pfn, writable, False))   # migration entry
        if not pte & 1:
            continue                                        # !pte_accessible(): no flush
        if policy.should_defer_flush(mm, task.cpu):
            policy.set_tlb_ubc_flush_pending(batch, mm, writable)
        else:
            yield from flush_tlb_mm_range(k, task, mm.id, vp, 1, False)
    if mappings:                      # the slides' "RO:RW ratio collected on unmapping"
        k.unmap_ro_rw["rw" if any(w for _, w in mappings) else "ro"] += 1
    return mappings, policy.folio_unmapped(batch, folio)
