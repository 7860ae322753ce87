"""Lazy TLB mode and mm_cpumask on x86 6.13+, and the CPU side of LUF's
finish_task_switch() flush: pure unit tests, no MPI.

- A lazy CPU that drops its borrowed mm on a flush IPI leaves that mm's mm_cpumask (the
  6.13+ lazy retention is not modelled: docs/simplifications.md); a CPU left in the
  mask of an mm it switched away from leaves it at the next IPI for that mm
  ("x86/mm/tlb: Update mm_cpumask lazily").
- should_trim_cpumask() is true at most once a second per mm, never in the mm's first
  second; with it, a flush of the mm also reaches non-lazy CPUs left in its mask.
- An idle -> task switch asks the kernel side for luf_flush_mm(prev_mm) only when idle
  had borrowed prev_mm and the coordinator published prev_mm as pending; the thread
  then waits in the kernel.
"""

import types
from collections import deque

import numpy as np
from test_workloads import hot_cpu

from emu import protocol as P
from emu.cpu.cpu import Cpu
from emu.mm.mm_types import MmStruct
from emu.mm.tlb import (
    IPI_ALWAYS,
    IPI_IF_WANTED,
    TRIM_INTERVAL_NS,
    flush_tlb_func,
    ipi_targets,
    should_flush_tlb,
    should_trim_cpumask,
)
from emu.protocol import FULL, NO_MM


def test_trim_at_most_once_a_second_per_mm_and_not_in_its_first_second():
    mm = MmStruct(0, "p", [])
    assert not should_trim_cpumask(mm, 0)
    assert not should_trim_cpumask(mm, TRIM_INTERVAL_NS)          # time_after(): strictly
    assert should_trim_cpumask(mm, TRIM_INTERVAL_NS + 5)
    assert not should_trim_cpumask(mm, TRIM_INTERVAL_NS + 6)
    assert not should_trim_cpumask(mm, 2 * TRIM_INTERVAL_NS + 5)
    assert should_trim_cpumask(mm, 2 * TRIM_INTERVAL_NS + 6)
    assert not should_trim_cpumask(MmStruct(1, "q", []), TRIM_INTERVAL_NS)   # its own clock


def _pub(states):
    """Published rows for CPUs in steady state: (loaded mm, lazy, mm_cpumask bits)."""
    pub = np.zeros((len(states), P.PUB_SLOTS), np.int64)
    for c, (mm, lazy, bits) in enumerate(states):
        pub[c, P.PUB_PREV_STATE] = P.pack_tlbstate(mm, lazy)
        pub[c, P.PUB_PREV_MASK] = bits
        pub[c, P.PUB_CLOCK] = 10**12
    return pub


def test_trim_adds_only_non_lazy_cpus_running_another_mm():
    # CPU 0 initiates; 1 runs mm 0; 2 runs mm 1 but is left in mm 0's mask; 3 is lazy
    # on mm 0; 4 dropped mm 0 to init_mm and is still in its mask
    pub = _pub([(0, False, 1), (0, False, 1), (1, False, 3), (0, True, 1), (-1, False, 1)])
    mask = (0, 1, 2, 3, 4)
    assert ipi_targets(pub, mask, 0, 0, False, 5, {}) == [1]
    assert ipi_targets(pub, mask, 0, 0, False, 5, {}, trim=True) == [1, 2, 4]
    assert ipi_targets(pub, mask, 0, 0, True, 5, {}) == [1, 2, 3, 4]     # freed tables
    assert ipi_targets(pub, mask, 0, NO_MM, False, 5, {}) == [1, 2, 4]   # batched
    assert not should_flush_tlb(pub, 3, 0, False, 5, (), trim=True)


def test_lazy_drop_keeps_the_mask_bit_until_an_ipi_for_that_mm(tmp_path):
    """6.13+: the lazy drop to init_mm leaves the CPU in the mm's mask; a batched flush
    (no mm to compare) keeps it there; the next IPI for that mm clears it."""
    cpu, th, _ = hot_cpu(tmp_path)
    cpu.current, th.state = None, "sleep"
    cpu._go_idle()
    assert cpu.is_lazy and cpu.cpumask_bits == 1
    flush_tlb_func(cpu, 0, 0, FULL, 5, local=False)         # lazy: drop to init_mm
    assert (cpu.loaded_mm, cpu.is_lazy, cpu.cpumask_bits) == (-1, False, 1)
    flush_tlb_func(cpu, NO_MM, 0, FULL, 0, local=False)     # batched: no mm to compare
    assert cpu.cpumask_bits == 1
    flush_tlb_func(cpu, 0, 0, FULL, 6, local=False)         # mm 0 not loaded: leave
    assert cpu.cpumask_bits == 0


def _switch_cpu(tmp_path, pending_bits):
    cpu, th, _ = hot_cpu(tmp_path)
    sent = []
    cpu.engine = types.SimpleNamespace(epoch=0, pub=np.zeros((2, P.PUB_SLOTS), np.int64),
                                       post=lambda event, _answer_at: sent.append(event))
    cpu.engine.pub[cpu.coordinator, P.PUB_LUF_PENDING_MMS] = pending_bits
    return cpu, th, sent


def _idle_then_wake(cpu, th):
    cpu.current, th.state = None, "sleep"
    cpu._go_idle()
    th.state = "ready"
    cpu._switch_to(th)


def test_idle_to_task_switch_asks_for_luf_flush_mm_of_the_borrowed_mm(tmp_path):
    cpu, th, sent = _switch_cpu(tmp_path, 1)
    _idle_then_wake(cpu, th)
    assert [(e[4], e[5]) for e in sent] == [(P.SWITCH_FLUSH, (th.tid, 0, 0))]
    assert sent[0][0] == cpu.clock and th.state == "kernel"
    sent.clear()
    th.state = "ready"
    cpu._switch_to(th)                          # task -> task: no borrowed mm
    assert sent == [] and th.state == "ready"


def test_switch_flush_survives_the_lazy_drop_and_needs_the_pending_bit(tmp_path):
    cpu, th, sent = _switch_cpu(tmp_path, 1)
    cpu.current, th.state = None, "sleep"
    cpu._go_idle()
    flush_tlb_func(cpu, 0, 0, FULL, 5, local=False)   # idle's active_mm is still mm 0
    th.state = "ready"
    cpu._switch_to(th)
    assert [e[5] for e in sent] == [(th.tid, 0, 0)]
    for bits in (0, 2):                               # mm 0 not published as pending
        cpu, th, sent = _switch_cpu(tmp_path, bits)
        _idle_then_wake(cpu, th)
        assert sent == [] and th.state == "ready"


def _ipi(cpu, sent_at, mm, condition, token=7):
    """Deliver an IPI sent at `sent_at` (arriving 260 ns later); return the acks sent."""
    acks = []
    cpu.engine.post = lambda event, _answer_at: acks.append(event)
    cpu._on_ipi(sent_at + 260, 5, (token, 5, mm, 0, FULL, 9, sent_at, condition))
    return [(e[4], e[5]) for e in acks]


def test_a_target_ignores_an_ipi_the_kernel_would_not_have_sent_at_its_send_time(tmp_path):
    """The initiator sends when it cannot know a target's state; the target judges the
    IPI by should_flush_tlb() on its own state at the send time."""
    cpu, th, _ = hot_cpu(tmp_path)
    cpu.clock = 1_000
    cpu.current, th.state = None, "sleep"
    cpu._go_idle()                                   # lazy on mm 0 from t = 1000
    cpu.clock = 5_000
    before = dict(cpu.stats)
    assert _ipi(cpu, 2_000, 0, IPI_IF_WANTED) == [(P.ACK, (7, 0))]
    assert (cpu.loaded_mm, cpu.is_lazy) == (0, True)            # no lazy drop
    assert cpu.stats["ipi_unneeded"] == 1 and cpu.stats["tlb_shootdowns"] == 0
    assert cpu.clock == 5_000 and cpu.stats["ipi_handler_ns"] == before["ipi_handler_ns"]
    # sent while it still ran mm 0 (before t = 1000): the kernel sends it, it is taken;
    # it arrived (t = 760) before the CPU went lazy, so it flushes instead of dropping
    epoch = cpu.slots[cpu.loaded_slot][2]
    assert _ipi(cpu, 500, 0, IPI_IF_WANTED) == [(P.ACK, (7, 1))]
    assert cpu.stats["tlb_shootdowns"] == 1 and (cpu.loaded_mm, cpu.is_lazy) == (0, True)
    assert cpu.slots[cpu.loaded_slot][2] == epoch + 1
    # freed page tables: on_each_cpu_mask(), lazy CPUs included
    cpu2, th2, _ = hot_cpu(tmp_path)
    cpu2.current, th2.state = None, "sleep"
    cpu2._go_idle()
    assert _ipi(cpu2, cpu2.clock, 0, IPI_ALWAYS) == [(P.ACK, (7, 1))]
    assert cpu2.stats["tlb_shootdowns"] == 1


def test_a_target_takes_an_ipi_older_than_what_it_remembers():
    """Past its kept history a CPU cannot judge: it takes the IPI (the safe side)."""
    cpu = types.SimpleNamespace(history=deque([(100 + i, 0, bool(i & 1)) for i in range(4)],
                                              maxlen=4))
    assert Cpu.tlbstate_at(cpu, 99) is None
    assert Cpu.tlbstate_at(cpu, 101) == (0, True)
    assert Cpu.tlbstate_at(cpu, 10**9) == (0, True)


def test_what_the_cpu_was_told_counts_from_its_time_even_at_its_published_clock():
    """A thread told to wait for I/O at the very time its CPU published (blocked there):
    a flush at that time sees the CPU going idle (lazy), not the published state."""
    pub = _pub([(0, False, 1), (1, False, 2)])
    pub[1, P.PUB_CLOCK] = 400
    told = {1: [(400, 1, 1, 7)]}                  # (time, mm, lazy, epoch)
    assert ipi_targets(pub, (0, 1), 0, NO_MM, False, 400, told) == []
    assert ipi_targets(pub, (0, 1), 0, NO_MM, False, 399, told) == [1]   # before: running
    assert ipi_targets(pub, (0, 1), 0, NO_MM, False, 400, {}) == [1]


def test_a_flush_the_kernel_sent_counts_before_the_cpu_publishes_it():
    """A flush reaching a CPU lazy in the flushed mm drops it to init_mm, not lazy
    (flush_tlb_func()); the kernel remembers that (Coordinator.tell_flush), so a batched
    flush decided before the CPU has published it targets the CPU. Without it the target
    set depended on whether a window boundary fell between the two flushes. A flush of
    another mm, or one reaching a CPU that is not lazy, changes nothing."""
    from emu.coordinator import Coordinator
    pub = _pub([(1, True, 2), (1, True, 2), (0, False, 1)])    # CPUs 0, 1 idle in mm 1
    for c in range(3):
        pub[c, P.PUB_CLOCK] = 100
    kernel = types.SimpleNamespace(engine=types.SimpleNamespace(pub=pub, epoch=5), told={},
                                   told_version=0)
    kernel._tell = lambda cpu, state: Coordinator._tell(kernel, cpu, state)
    assert ipi_targets(pub, (0, 1, 2), 2, NO_MM, False, 600, kernel.told) == []
    Coordinator.tell_flush(kernel, 0, 500, NO_MM)   # CPU 0: its task's local flush
    Coordinator.tell_flush(kernel, 1, 500, 0)       # CPU 1: a flush of another mm
    Coordinator.tell_flush(kernel, 2, 500, NO_MM)   # CPU 2: not lazy
    assert set(kernel.told) == {0} and kernel.told_version == 1
    assert ipi_targets(pub, (0, 1, 2), 2, NO_MM, False, 600, kernel.told) == [0]
    assert ipi_targets(pub, (0, 1, 2), 2, NO_MM, False, 499, kernel.told) == []
