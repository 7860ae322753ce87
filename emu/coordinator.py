"""The Coordinator component: the kernel's global side, as processes (SimPy style).

Faults and system calls arriving from CPUs become kernel tasks that run "on" the
sending CPU, at the time the CPU entered the kernel. A task's shootdown is sent from
here on its CPU's behalf (the IPI names the initiating CPU), and the task resumes at
the latest ack's timestamp, or when it has finished sending if that is later. kswapd
and other kernel threads run on CPU 0, beside which the coordinator is placed.
"""

from bisect import insort

from emu import protocol as P
from emu.cpu.cpu import answer_lookahead
from emu.engine.component import INF, Component
from emu.engine.process import Delay, Process, ProcessRunner
from emu.latency import LatencyLog
from emu.mm import (
    filemap,
    madvise,
    memory,
    migrate,
    mmap,
    mmap_lock,
    mprotect,
    numa_balancing,
    page_alloc,
    vmscan,
)
from emu.mm.kernel import Kernel
from emu.mm.tlb import (
    Shootdown,
    drops_lazy_mm,
    ipi_condition,
    ipi_targets,
    send_ipis,
    tlbstate_at,
)
from emu.policy import make_policy

KTHREAD_CPU = 0
UNORDERED = (P.YOUNG, P.THREAD_EXIT)   # cost the CPU nothing, carry their time (send)


class Coordinator(Component):
    trace = None                # an emu.trace.Recorder under --trace
    def __init__(self, cid: int, ncpus: int, sc: dict, layout, policy: str, threads_by_mm):
        super().__init__(cid)
        self.ncpus = ncpus
        self.k = k = Kernel(sc, layout, ncpus, self)
        k.policy = make_policy(policy, k)
        self.runner = ProcessRunner(self._dispatch)
        self.now = 0
        self._token = 0
        self._limit = 0                 # how far run_window may go (lowered by send)
        self._handled_to = 0            # the last event's time
        self.inputs_late = 0            # requests and acks older than it: 0 by send()
        c = sc["cost"]
        self._lookahead = answer_lookahead(c)
        self._resume_ns = {}    # tid -> least time from its fault's reply to its next request
        self._waiting = {}      # token -> [process, acks still due, latest ack, source, start]
        self.initiator_stats = {"nr_tlb_remote_flush": [0] * ncpus, "ipi_sent": [0] * ncpus}
        self.latency = LatencyLog()
        self.mm_live = [sum(1 for t in ts if not t[2]) for ts in threads_by_mm]
        self.daemon_tids = {t[0] for ts in threads_by_mm for t in ts if t[2]}
        self.tid_mm = {t[0]: mm for mm, ts in enumerate(threads_by_mm) for t in ts}
        self.cpu_nthreads = [0] * ncpus
        for ts in threads_by_mm:
            for t in ts:
                self.cpu_nthreads[t[1]] += 1
        self.told: dict[int, list] = {}     # cpu -> what it was told since its publication
        self.told_version = 0               # changes whenever `told` does
        self.mm_exit_ns = [0] * len(threads_by_mm)
        for mm, ts in enumerate(threads_by_mm):
            k.mms[mm].threads = ts
        self._boot()
        for node in range(k.nodes):
            self.runner.spawn(lambda task, n=node: vmscan.kswapd(k, task, n), 0, KTHREAD_CPU,
                              f"kswapd{node}", kthread=True)
        if sc["kernel"]["numa_balancing"] and k.nodes > 1:
            for mm in k.mms:
                if mm.threads:
                    self.runner.spawn(lambda task, m=mm: numa_balancing.task_numa_work(k, task, m),
                                      0, mm.threads[0][1], "numa_scan")
        mig = sc["migrate"]
        if mig["interval_ns"] and mig["pages"] and k.nodes > 1:
            self.runner.spawn(lambda task: self._mover(task, mig["interval_ns"], mig["pages"]),
                              0, KTHREAD_CPU, "mover", kthread=True)

    def _boot(self) -> None:
        """Map and populate the mappings that exist at start (before any CPU runs)."""
        boot = Process(0, KTHREAD_CPU, "boot", True, -1)
        for vma in self.k.layout.vmas:
            if vma.mapped:
                for _ in self._syscall(boot, "mmap", (vma.idx, False, 0, 0)):
                    pass

    def _mover(self, task, interval: int, pages: int):
        """The migrate scenario's mover: pages go back and forth between the nodes."""
        k, cursor, nr = self.k, 0, self.k.layout.nr_vpages
        while any(self.mm_live):
            yield Delay(interval)
            picked = {}
            for i in range(nr):
                vp = (cursor + i) % nr
                pte = k.R.pte[vp]
                if pte >= 0 and pte & 1 and not k.folios[pte >> 2].locked:
                    picked[pte >> 2] = None
                    if len(picked) >= pages:
                        cursor = vp + 1
                        break
            for node in (0, 1):
                moving = [p for p in picked if k.layout.node_of(p) == node]
                if moving:
                    task.source = "migrate"
                    yield from migrate.migrate_pages_batch(k, task, moving, 1 - node, None)

    # -- the window -----------------------------------------------------------------------
    def run_window(self, start: int, end: int) -> None:
        """Handle requests and run kernel tasks in time order up to the horizon (the
        earliest time a CPU could still send something, known at the window's start),
        and no further than the first message sent to a CPU in this window (send), so
        no request from a CPU ever arrives in the kernel's past."""
        self._forget_told()
        runner, R = self.runner, self.k.R
        R.changes.prune(start)
        self._limit = min(end, self.engine.horizon)
        while True:
            te = self._queue[0][0] if self._queue else INF
            tp = runner.next_time()
            if min(te, tp) >= self._limit:
                break
            if te <= tp:
                ev = self.pop_event()
                self.now = ev[0]
                if self.now >= self._handled_to:
                    self._handled_to = self.now
                elif ev[4] not in UNORDERED:
                    self.inputs_late += 1
                R.now = self._handled_to            # what it changes, it changes now
                self._handle(ev, self.now)
            else:
                self.now = R.now = tp
                runner.step()

    def send(self, dst: int, kind: int, payload, ts: int) -> None:
        """A CPU can answer a message only after the window, and no earlier than the
        message's time plus the least the answer costs (the lookahead of a conservative
        simulation, cpu.py answer_lookahead): an IPI's ack travels `ipi_latency_ns` back;
        a woken thread's next request is charged at least a system call's entry, a page
        walk and fault, or a context switch first, and a thread woken from a fault told
        the kernel more (its remaining touch: Cpu.next_request_ns); a local flush is not
        answered. The engine keeps the same bound for the message while it is in flight.
        So the kernel stops there for this window: no request or ack reaches it in its
        past. (Accessed-bit reports and thread exits cost nothing and may arrive after
        the kernel's time: they carry their own time, and an accessed bit set a little
        late is harmless.) The ideal policy's frame query is answered at its own
        time."""
        if kind == P.REPLY and payload[0] in self._resume_ns:   # a fault's: its thread said
            limit = ts + self._resume_ns.pop(payload[0])
        else:
            limit = min(ts + self._lookahead[kind], INF)
        super().send(dst, kind, payload, ts, limit)
        if limit < self._limit:
            self._limit = limit

    def next_time(self) -> int:
        return min(self.next_event_time(), self.runner.next_time())

    def publish(self, slots) -> None:
        slots[:] = 0
        slots[P.PUB_LUF_PENDING_MMS] = self.k.policy.luf_pending_mms()

    def _handle(self, ev, t: int) -> None:
        kind, p = ev[4], ev[5]
        k = self.k
        if kind == P.FAULT:
            tid, vpage, access, cpu, segv_skip, self._resume_ns[tid] = p
            self._user(lambda task: memory.do_user_addr_fault(k, task, vpage, access), t, cpu,
                       tid, segv_skip)
        elif kind == P.SYSCALL:
            tid, op, args, cpu = p
            self._user(lambda task: self._syscall(task, op, args), t, cpu, tid)
        elif kind == P.SWITCH_FLUSH:
            tid, mm, cpu = p
            self._user(lambda task: k.policy.finish_task_switch(task, k.mms[mm]), t, cpu, tid)
        elif kind == P.ACK:
            w = self._waiting[p[0]]
            w[1] -= 1
            if p[1]:
                w[2] = max(w[2], t)
            else:                   # an IPI the kernel would not have sent: not counted,
                self.k.ipis_by_source[w[3]] -= 1        # no wait on it
                self.initiator_stats["ipi_sent"][w[0].cpu] -= 1
            if self.trace is not None:
                self.trace.ack(p[0], ev[1], t, w[2] if w[1] == 0 else -1, p[1])
            if w[1] == 0:
                del self._waiting[p[0]]
                proc = w[0]
                self.latency.record(w[3], w[2] - w[4], self.serves_thread(proc))
                self.runner.resume(proc, w[2])
        elif kind == P.HOLDS_REPLY:
            k.policy.holds_reply(*p, t)
        elif kind == P.YOUNG:
            pte = k.R.pte
            for vp in p:            # a walk of a PTE cleared since (replica lag) sets nothing
                if pte[vp] >= 0 and pte[vp] & 1:
                    k.young[vp] = 1
        elif kind == P.THREAD_EXIT:
            mm = p[1]
            self.mm_live[mm] -= 1
            self.mm_exit_ns[mm] = max(self.mm_exit_ns[mm], ev[0])
        else:
            raise RuntimeError(f"coordinator: unexpected event kind {kind}")

    def _user(self, body, t: int, cpu: int, tid: int, segv_skip: int = 0) -> None:
        """A kernel task on behalf of thread `tid` on `cpu`; the thread resumes after it."""
        def run(task):
            try:
                yield from body(task)
            except memory.SegFault:
                if not segv_skip:
                    raise
                self.tell_thread(task.cpu, P.REPLY, (task.tid, 1), task.t)
                return
            self.tell_thread(task.cpu, P.REPLY, (task.tid, 0), task.t)
        self.runner.spawn(run, t, cpu, "user", tid=tid)

    def _syscall(self, task, op: str, args):
        k = self.k
        if op == "kalloc":
            yield from page_alloc.kernel_alloc(k, task, args[0])
            return
        if op in ("write", "truncate"):
            fn = filemap.generic_perform_write if op == "write" else filemap.truncate_pagecache
            yield from fn(k, task, *args)
            return
        vma, extra, first, npages = k.layout.vmas[args[0]], args[1], args[2], args[3]
        locks = k.mms[vma.mm].locks
        if op == "munmap":              # downgrades mmap_lock and releases it itself
            yield from mmap_lock.down(k, task, locks, True)
            yield from mmap.do_munmap(k, task, vma, first, npages, unlock=True)
            return
        write = op != "madvise"
        yield from mmap_lock.down(k, task, locks, write)
        if op == "mmap":
            yield from mmap.do_mmap(k, task, vma, bool(extra), first, npages)
        elif op == "mprotect":
            yield from mprotect.do_mprotect(k, task, vma, extra, first, npages)
        else:
            advise = madvise.madvise_pageout if extra == "pageout" else madvise.madvise_dontneed
            yield from advise(k, task, vma, first, npages)
        mmap_lock.up(k, task, locks, write)

    def tell_thread(self, cpu: int, kind: int, payload, t: int) -> None:
        """Wake a thread (REPLY) or put it to sleep in I/O (IO_WAIT), and remember what
        that does to its CPU's TLB state until its publication reflects it."""
        tid = payload[0]
        epoch = self.engine.epoch
        if kind == P.REPLY:
            state = (t, self.tid_mm[tid], 0, epoch)
        else:
            state = (t, self.tid_mm[tid], 1 if self.cpu_nthreads[cpu] == 1 else -1, epoch)
        self._tell(cpu, state)
        self.send(cpu, kind, payload, t)

    def tell_flush(self, cpu: int, arrival: int, mm: int) -> None:
        """A flush (IPI or local) of `mm` reaches `cpu` at `arrival`. If the CPU is lazy
        in that mm then, flush_tlb_func() switches it to init_mm, no longer lazy
        (switch_mm_irqs_off()): remember that until its publication shows it, or flushes
        decided in the meantime would choose their targets on its old state, and more of
        them the longer the window."""
        state = tlbstate_at(self.engine.pub, cpu, arrival, self.told.get(cpu, ()))
        if state is not None and drops_lazy_mm(state[0], state[1], mm):
            self._tell(cpu, (arrival, -1, 0, self.engine.epoch))

    def _tell(self, cpu: int, state: tuple) -> None:
        insort(self.told.setdefault(cpu, []), state, key=lambda s: s[0])   # in time order
        self.told_version += 1

    def sleep_thread(self, task) -> None:
        """`task`'s thread sleeps in the kernel (I/O, a lock): it leaves its CPU, once per
        task; its REPLY brings it back."""
        if task.tid >= 0 and not task.asleep:
            task.asleep = True
            self.tell_thread(task.cpu, P.IO_WAIT, (task.tid,), task.t)

    def _forget_told(self) -> None:
        """Drop what every CPU's publication reflects: a message sent in window e is
        delivered at its end, handled in window e + 1 (its time is before that window's
        end) and published at the end of e + 1, read from window e + 2 on."""
        oldest = self.engine.epoch - 1
        for cpu in list(self.told):
            kept = [s for s in self.told[cpu] if s[3] >= oldest]
            if len(kept) == len(self.told[cpu]):
                continue
            self.told_version += 1
            if kept:
                self.told[cpu] = kept
            else:
                del self.told[cpu]

    def serves_thread(self, task) -> bool:
        """Whether `task` runs for a (non-daemon) thread, whose runtime its waits delay."""
        return not task.kthread and task.tid not in self.daemon_tids

    def flush_waited(self, task, ns: int) -> None:
        """`task` waited `ns` for a flush another task had in flight."""
        self.latency.waited(ns, self.serves_thread(task))
        if self.trace is not None:
            self.trace.flush_wait(task, task.t - ns, task.t)

    # -- shootdowns -----------------------------------------------------------------------
    def _dispatch(self, proc, req) -> None:
        """native_flush_tlb_multi() for the task's CPU: a local flush if that CPU is in
        the mask, then one IPI per target CPU chosen from the targets' state at the
        task's time; the task resumes at the latest ack or when done sending."""
        if not isinstance(req, Shootdown):
            raise RuntimeError(f"coordinator: unknown request {req!r}")
        self._token += 1
        token, t, cpu = self._token, proc.t, proc.cpu
        flush = (req.mm, req.start, req.npages, req.new_gen)
        source = proc.source or "other"
        if cpu in req.cpumask:
            self.local_flush(proc, *flush)
        # native_flush_tlb_multi() counts NR_TLB_REMOTE_FLUSH before should_flush_tlb()
        # filters out lazy CPUs: a request can count with no IPI sent
        self.initiator_stats["nr_tlb_remote_flush"][cpu] += 1
        targets = ipi_targets(self.engine.pub, req.cpumask, cpu, req.mm, req.freed_tables, t,
                              self.told, req.trim)
        if not targets:
            self.runner.resume(proc, t)
            return
        self.k.ipis_by_source[source] += len(targets)
        self.initiator_stats["ipi_sent"][cpu] += len(targets)
        sent = t + send_ipis(self, token, cpu, targets, flush, t, self.k.cost,
                             ipi_condition(req.freed_tables, req.trim))
        if self.trace is not None:
            self.trace.shootdown(token, proc, t, targets, source)
        self._waiting[token] = [proc, len(targets), sent, source, t]

    def local_flush(self, task, mm: int, start: int, npages: int, new_gen: int) -> None:
        self.send(task.cpu, P.LOCAL_FLUSH, (mm, start, npages, new_gen), task.t)
        self.tell_flush(task.cpu, task.t, mm)
