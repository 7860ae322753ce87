"""Cpu.answer_bound, the lookahead the kernel's horizon is made of (engine.py): a CPU
must never send the kernel an ordered message (a request or an IPI's ack, whether it
takes the IPI or not) earlier than the bound it gave at the last window boundary, nor a
thread woken from a fault earlier than the reply plus the `resume_ns` its fault carried.
Otherwise the paced kernel would have run past it (kernel_inputs_late, asserted 0 on
whole runs by test_quantum.py)."""

import types

import numpy as np
from test_workloads import scenario

from emu import protocol as P
from emu.coordinator import UNORDERED
from emu.cpu.cpu import Cpu
from emu.mm.layout import build_layout
from emu.mm.replica import Replica, make_pte
from emu.mm.tlb import IPI_ALWAYS, IPI_IF_WANTED, switch_mm_irqs_off
from emu.runner import place_threads
from emu.workload.program import Thread

WINDOW = 70          # ns: short windows, so bounds are taken inside touches
IPI_EVERY = 9        # windows: an IPI arrives 30 ns into the window, sent 230 ns before


def test_a_cpu_never_sends_before_its_answer_bound(tmp_path):
    sc = scenario(tmp_path, pages=64, repeat=4, steps=(
        '{ op = "touch", mapping = "m", pages = 24, work_ns = 15 }, '
        '{ op = "madvise", mapping = "m", pages = 4 }'))
    layout = build_layout(sc)
    replica = Replica(layout, 1)
    start = layout.vmas[0].start
    for vp in range(start, start + 64):
        if vp % 5:                               # every fifth page faults
            replica.pte[vp] = make_pte(vp, True)
    tid, mm, i, n, spec, _ = place_threads(sc, layout, 1)[0]
    th = Thread(tid, mm, i, n, spec, layout, {}, 1)
    cpu = Cpu(0, 1, 1, sc, replica, [th])
    sent = []
    cpu.engine = types.SimpleNamespace(epoch=0, pub=np.zeros((2, P.PUB_SLOTS), np.int64),
                                       post=lambda event, _answer_at: sent.append(event))
    switch_mm_irqs_off(cpu, mm)
    kinds, beyond_request, t, seq = [], 0, 0, 0
    resume_at = 0                 # a woken thread's earliest next request
    window = 0
    while th.state != "done":
        window += 1
        if window % IPI_EVERY == 0:             # for mm, or another (not taken unless
            seq, k = seq + 1, window // IPI_EVERY   # page tables were freed)
            cpu.deliver((t + 30, 1, seq, 0, P.IPI,
                         (seq, 1, mm if k % 2 else mm + 1, 0, P.FULL, 0, t - 200,
                          IPI_ALWAYS if k % 3 == 0 else IPI_IF_WANTED)))
        bound = cpu.answer_bound(cpu.next_time())
        beyond_request += bound - max(t, cpu.clock) > cpu.request_ns
        done = len(sent)
        cpu.run_window(t, t + WINDOW)
        for ev in sent[done:]:
            if ev[4] in UNORDERED:
                continue
            assert ev[0] >= bound, (ev, bound)
            kinds.append(ev[4])
            if ev[4] == P.ACK:
                continue
            assert ev[0] >= resume_at, (ev, resume_at)
            seq += 1                            # the kernel answers at once
            if ev[4] == P.FAULT:
                replica.pte[ev[5][1]] = make_pte(ev[5][1], True)
                resume_at = ev[0] + ev[5][5]
            cpu.deliver((ev[0], 1, seq, 0, P.REPLY, (tid, 0)))
        t += WINDOW
        assert t < 10**7
    assert kinds.count(P.FAULT) >= 4 and kinds.count(P.SYSCALL) == 4
    assert cpu.stats["tlb_shootdowns"] > 0 and cpu.stats["ipi_unneeded"] > 0
    assert beyond_request > 0                   # the touch's lookahead was used


def _two_threads_faulting(tmp_path):
    """A CPU running two threads of one process, each touching its half of 16 pages, of
    which two are not mapped: each thread faults once, thread 0 first."""
    sc = scenario(tmp_path, pages=16, steps='{ op = "touch", mapping = "m", part = "thread", '
                                             'work_ns = 15 }',
                  overrides=("process.0.threads.0.count=2",))
    layout = build_layout(sc)
    replica = Replica(layout, 1)
    start = layout.vmas[0].start
    for vp in range(start, start + 16):
        if vp - start not in (5, 9):
            replica.pte[vp] = make_pte(vp, True)
    threads = [Thread(tid, mm, i, n, spec, layout, {}, 1)
               for tid, mm, i, n, spec, _ in place_threads(sc, layout, 1)]
    cpu = Cpu(0, 1, 1, sc, replica, threads)
    sent = []
    cpu.engine = types.SimpleNamespace(epoch=0, pub=np.zeros((2, P.PUB_SLOTS), np.int64),
                                       post=lambda event, _answer_at: sent.append(event))
    return cpu, sent


def test_events_at_the_cpus_own_time_are_handled_the_same_whenever_they_arrive(tmp_path):
    """Thread 0 faults and sleeps in I/O; thread 1 runs and faults at time c; the kernel
    then puts thread 1 to sleep in I/O and wakes thread 0, both stamped c. The CPU's own
    step at c (the fault, then nothing to run: its accessed bits are reported) comes
    before those events, whether they were delivered before the CPU got to c or only
    after it had run to c + 1 ns (the bound it runs to when the kernel's earliest work
    is at c). Otherwise where the window boundaries fall would decide the order (found
    between reclaim's runs at q = 10 and 0.5 us: accessed bits reported at different
    times and in different batches)."""
    cpu, sent = _two_threads_faulting(tmp_path)
    cpu.run_window(0, 100_000)
    first = [ev for ev in sent if ev[4] == P.FAULT]
    assert [ev[5][0] for ev in first] == [0]
    sleep0 = (first[0][0], 1, 1, 0, P.IO_WAIT, (0,))
    cpu.deliver(sleep0)
    cpu.run_window(0, 100_000)
    faults = [ev for ev in sent if ev[4] == P.FAULT]
    assert [ev[5][0] for ev in faults] == [0, 1]
    c = faults[1][0]
    outcomes = []
    for early in (True, False):
        cpu, sent = _two_threads_faulting(tmp_path)
        cpu.deliver(sleep0)
        if not early:
            cpu.run_window(0, c + 1)
        cpu.deliver((c, 1, 2, 0, P.IO_WAIT, (1,)))
        cpu.deliver((c, 1, 3, 0, P.REPLY, (0, 0)))
        cpu.run_window(0, 100_000)
        outcomes.append((sent, cpu.clock, dict(cpu.stats)))
    assert outcomes[0] == outcomes[1]
