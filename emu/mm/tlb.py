"""arch/x86/mm/tlb.c: who receives a shootdown IPI, and what a CPU flushes.

Initiator side: flush_tlb_mm_range() turns a range into a flush request; the targets
are mm_cpumask(mm) minus the initiator, filtered by should_flush_tlb() (lazy CPUs are
skipped unless page tables were freed; CPUs running another mm too, except when the
once-a-second trim_cpumask is set, 6.13+). Target side: flush_tlb_func() compares the
CPU's per-ASID tlb_gen with the mm's and does nothing, a per-page INVLPG, or a full
flush. switch_mm_irqs_off() picks one of the 6 PCID slots and flushes a stale one.

The CPU-side functions take the Cpu component. The initiator's side runs in the
coordinator: mm_cpumask and the lazy state of other CPUs come from what they published
at the last window boundary, read as of the flush's simulated time (`tlbstate_at`).
"""

from emu import protocol as P
from emu.protocol import FULL, IPI, NO_MM

TRIM_INTERVAL_NS = 1_000_000_000  # HZ jiffies; also the first trim's delay (init_new_context())


def flush_npages(npages: int, ceiling: int) -> int:
    """A range of more than tlb_single_page_flush_ceiling pages becomes a full flush."""
    return FULL if npages > ceiling else npages


def tlbstate_at(pub, cpu: int, t: int, told=()) -> tuple[int, int, int] | None:
    """(loaded mm, is_lazy, mm_cpumask bits) of `cpu` at simulated time `t`, replayed
    from the changes it published; None if unknown (the caller takes the safe side).

    Past the CPU's published clock, its state can only have changed through what the
    coordinator told it that its publication does not reflect yet (`told`: (time, mm,
    lazy or -1 if unknown, epoch), in time order: a thread woken by its reply runs its
    mm; a thread gone to wait for I/O leaves its CPU idle, lazy, if it is the CPU's only
    thread; a flush reaching it lazy drops it to init_mm, Coordinator.tell_flush). Such
    a message takes effect at its time, or at once if the CPU's clock had passed it (the
    CPU then handles it late), so it counts whenever its time is <= `t`."""
    row = pub[cpu]
    if t >= row[P.PUB_CLOCK]:
        for ts, mm, lazy, _ in reversed(told):
            if ts <= t:
                if lazy < 0:
                    return None
                bits = int(row[P.PUB_CPUMASK]) | (1 << mm if mm >= 0 else 0)
                return mm, lazy, bits
    state, bits = int(row[P.PUB_PREV_STATE]), int(row[P.PUB_PREV_MASK])
    n = int(row[P.PUB_NCHANGES])
    for i in range(P.PUB_CHANGES, P.PUB_CHANGES + 3 * min(n, P.PUB_MAX_CHANGES), 3):
        if t < row[i]:
            break
        state, bits = int(row[i + 1]), int(row[i + 2])
    else:
        if n > P.PUB_MAX_CHANGES and t < row[P.PUB_T_LAST]:
            return None
    return (*P.unpack_tlbstate(state), bits)


def mm_cpumask(rows, mm: int, t: int, told: dict) -> tuple[int, ...]:
    """mm_cpumask(mm) at time `t` from the CPUs' published rows, as Python lists (numpy
    calls on the small array, once per PTE clear, dominated reclaim's cost: see
    docs/performance.md). CPUs that did not change since the last window boundary and
    were told nothing since read directly, the others replayed (in the mask if unknown:
    safe side)."""
    bit = 1 << mm
    mask = []
    for c, row in enumerate(rows):
        if row[P.PUB_NCHANGES] == 0 and c not in told:
            if row[P.PUB_CPUMASK] & bit:
                mask.append(c)
        else:
            state = tlbstate_at(rows, c, t, told.get(c, ()))
            if state is None or state[2] & bit:
                mask.append(c)
    return tuple(mask)


def should_flush_tlb(pub, cpu: int, mm: int, freed_tables: bool, t: int, told=(),
                     trim: bool = False) -> bool:
    """The IPI filter of native_flush_tlb_multi()/should_flush_tlb(), at time `t`.
    `trim` (info->trim_cpumask): a CPU left in the mask that runs another mm is
    flushed too, and so drops out of the mask (flush_tlb_func())."""
    if freed_tables:
        return True                      # on_each_cpu_mask: lazy CPUs too
    state = tlbstate_at(pub, cpu, t, told)
    if state is None:
        return True                      # state at t not known: flush (safe; see wants_ipi)
    return wants_ipi(state[0], state[1], mm, trim)


def wants_ipi(loaded: int, lazy: bool, mm: int, trim: bool) -> bool:
    """should_flush_tlb() on a known state (loaded mm, is_lazy) of the target."""
    if lazy:
        return False                     # flushes at its next switch instead
    return mm == NO_MM or loaded == mm or trim   # batched flush: every non-lazy CPU


def drops_lazy_mm(loaded: int, lazy: bool, mm: int) -> bool:
    """Whether a flush of `mm` reaching a CPU in this state switches it to init_mm, not
    lazy (flush_tlb_func(): a lazy CPU drops the borrowed mm instead of flushing it).
    The target applies it (flush_tlb_func below); the initiator predicts it for the CPUs
    it flushes (Coordinator.tell_flush)."""
    return lazy and loaded >= 0 and mm in (NO_MM, loaded)


# how a target decides whether the kernel would have sent it the IPI (send_ipis, Cpu._on_ipi)
IPI_ALWAYS, IPI_IF_WANTED, IPI_IF_WANTED_TRIM = 0, 1, 2


def ipi_condition(freed_tables: bool, trim: bool) -> int:
    """on_each_cpu_mask() when page tables were freed, else should_flush_tlb()."""
    return IPI_ALWAYS if freed_tables else IPI_IF_WANTED_TRIM if trim else IPI_IF_WANTED


def ipi_targets(pub, cpumask, initiator: int, mm: int, freed_tables: bool,
                t: int, told: dict, trim: bool = False) -> list[int]:
    return [c for c in cpumask
            if c != initiator and should_flush_tlb(pub, c, mm, freed_tables, t, told.get(c, ()),
                                                   trim)]


def should_trim_cpumask(mm, t: int) -> bool:
    """should_trim_cpumask() (6.13+, "x86/mm/tlb: Only trim the mm_cpumask once a
    second"): true at most once per TRIM_INTERVAL_NS per mm, the first time a flush of
    the mm with another CPU in its mask comes after mm->context.next_trim_cpumask."""
    if t > mm.next_trim_cpumask:
        mm.next_trim_cpumask = t + TRIM_INTERVAL_NS
        return True
    return False


def send_ipis(sender, token: int, initiator: int, targets, flush, t: int,
              cost: dict, condition: int) -> int:
    """The sending half of native_flush_tlb_multi(): one IPI message per target, each a
    little later than the last; returns the time the initiator spends sending. Each IPI
    carries its send time and `condition`, so a target whose state the initiator could
    not know (tlbstate_at() None) can tell whether the kernel would have sent it. The
    sender notes what each arrival does to its target's lazy state (tell_flush)."""
    lat, per = cost["ipi_latency_ns"], cost["ipi_per_target_ns"]
    for i, c in enumerate(targets):
        arrival = t + lat + i * per
        sender.send(c, IPI, (token, initiator, *flush, t, condition), arrival)
        sender.tell_flush(c, arrival, flush[0])
    return len(targets) * per


# -- target side ------------------------------------------------------------------------
def flush_tlb_func(cpu, mm: int, start: int, npages: int, new_gen: int, local: bool,
                   late_at: int = -1) -> None:
    """Flush on `cpu` as x86 flush_tlb_func() does; count the vmstat events.
    `late_at`: the arrival of an interrupt taken late (Cpu._on_ipi). The mm's gen is
    then read as it was at the arrival, and if the CPU has switched mm or left lazy
    mode since, a borrowed mm it holds now was not borrowed then."""
    switched_since = late_at >= 0 and cpu.history[-1][0] > late_at
    st = cpu.stats
    if not local:
        st["tlb_shootdowns"] += 1
        st["nr_tlb_remote_flush_received"] += 1
    if mm != NO_MM and mm != cpu.loaded_mm:
        cpu.leave_cpumask(mm)            # left in the mask of an mm it no longer runs
        return
    if cpu.loaded_mm < 0:
        return                           # init_mm: no user entries
    if drops_lazy_mm(cpu.loaded_mm, cpu.is_lazy and not switched_since, mm):
        cpu.switch_to_init_mm()          # lazy: drop the borrowed mm instead of flushing
        return
    slot = cpu.slots[cpu.loaded_slot]
    local_gen = slot[1]
    if new_gen and new_gen <= local_gen:
        return
    mm_gen = cpu.replica.mm_gen[cpu.loaded_mm]
    if late_at >= 0:
        mm_gen = cpu.replica.mm_gen_at.gen_at(cpu.loaded_mm, late_at, mm_gen)
    mm_gen = max(mm_gen, new_gen)
    if local_gen == mm_gen:
        return
    if npages != FULL and new_gen == local_gen + 1 and new_gen == mm_gen:
        cpu.invlpg_range(start, npages)
        if local:
            st["nr_tlb_local_flush_one"] += npages
    else:
        cpu.flush_slot(cpu.loaded_slot)
        if local:
            st["nr_tlb_local_flush_all"] += 1
    slot[1] = mm_gen


def switch_mm_irqs_off(cpu, mm: int) -> None:
    """Load `mm` on `cpu`: reuse its PCID slot if current, else flush or take a new slot."""
    epoch = cpu.engine.epoch
    if cpu.loaded_mm == mm:
        if cpu.is_lazy:                  # leaving lazy mode: catch up if behind
            cpu.set_tlbstate(mm, False)
            cpu.joined_epoch = epoch
            slot = cpu.slots[cpu.loaded_slot]
            gen = cpu.replica.mm_gen[mm]
            if slot[1] < gen:
                cpu.flush_slot(cpu.loaded_slot)
                cpu.stats["tlb_flush_on_switch"] += 1
                slot[1] = gen
        return
    cpu.join_cpumask(mm)
    gen = cpu.replica.mm_gen[mm]
    for i, slot in enumerate(cpu.slots):  # noqa: B007 - i is the slot found
        if slot[0] == mm:
            need_flush = slot[1] < gen
            break
    else:
        i = cpu.next_asid
        cpu.next_asid = (i + 1) % len(cpu.slots)
        slot = cpu.slots[i]
        slot[0] = mm
        need_flush = True
    if need_flush:
        cpu.flush_slot(i)
        slot[1] = gen
        cpu.stats["tlb_flush_on_switch"] += 1
    cpu.loaded_slot = i
    cpu.set_tlbstate(mm, False)
    cpu.joined_epoch = epoch


def catch_up_after_join(cpu) -> None:
    """Window-lag guard (docs/design.md): a CPU that joined its mm in the last window may
    have been missed by a flush whose generation it could not yet see; flush if behind."""
    if cpu.loaded_mm < 0 or cpu.is_lazy or cpu.joined_epoch < cpu.engine.epoch - 1:
        return
    slot = cpu.slots[cpu.loaded_slot]
    gen = cpu.replica.mm_gen[cpu.loaded_mm]
    if slot[1] < gen:
        cpu.flush_slot(cpu.loaded_slot)
        cpu.stats["tlb_flush_on_switch"] += 1
        slot[1] = gen


# -- initiator side, run by the coordinator's kernel tasks -------------------------------
class Shootdown:
    """A request from a kernel task: flush `cpumask` (None: mm_cpumask(mm)) and wait."""

    __slots__ = ("cpumask", "mm", "start", "npages", "new_gen", "freed_tables", "trim")

    def __init__(self, cpumask, mm, start, npages, new_gen, freed_tables, trim=False):
        self.cpumask, self.mm, self.start, self.npages = cpumask, mm, start, npages
        self.new_gen, self.freed_tables, self.trim = new_gen, freed_tables, trim


def flush_tlb_mm_range(k, task, mm: int, start: int, npages: int, freed_tables: bool):
    """flush_tlb_mm_range(): bump the mm's tlb_gen, IPI the CPUs that may cache it;
    when another CPU is in the mask, once a second also the CPUs left in it that run
    something else (should_trim_cpumask())."""
    new_gen = k.inc_mm_tlb_gen(mm)
    npages = flush_npages(npages, k.flush_ceiling)
    if npages == FULL:
        start = 0
    trim = any(c != task.cpu for c in k.cpumask(mm)) and \
        should_trim_cpumask(k.mms[mm], task.t)
    yield from k.shootdown(task, None, mm, start, npages, new_gen, freed_tables, trim)


def flush_tlb_mm(k, task, mm: int):
    yield from flush_tlb_mm_range(k, task, mm, 0, FULL, False)
