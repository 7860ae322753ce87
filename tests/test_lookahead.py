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
