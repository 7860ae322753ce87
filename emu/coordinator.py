"""The Coordinator component: the kernel's global side, as processes (SimPy style).

Faults and system calls arriving from CPUs become kernel tasks that run "on" the
sending CPU: their IPIs are sent by that CPU (a DO_SHOOTDOWN request) and the task
resumes when it reports the acks. kswapd and other kernel threads run on CPU 0, beside
which the coordinator is placed, so their IPIs leave CPU 0's rank directly.
"""

from emu import protocol as P
from emu.engine.component import INF, Component
from emu.engine.process import Delay, Process, ProcessRunner, Wait
from emu.mm import filemap, madvise, memory, migrate, mmap, mprotect, numa_balancing, page_alloc, vmscan
from emu.mm.kernel import Kernel
from emu.mm.tlb import Shootdown, ipi_targets, send_ipis
from emu.policy import make_policy

KTHREAD_CPU = 0


class Coordinator(Component):
    def __init__(self, cid: int, ncpus: int, sc: dict, layout, policy: str, threads_by_mm):
        super().__init__(cid)
        self.ncpus = ncpus
        self.k = k = Kernel(sc, layout, ncpus, self)
        k.policy = make_policy(policy, k)
        self.runner = ProcessRunner(self._dispatch)
        self.now = 0
        self._token = 0
        self._waiting = {}                  # token -> [process, replies still due, source]
        self.kthread_stats = {"nr_tlb_remote_flush": 0, "ipi_sent": 0}
        self.mm_live = [sum(1 for t in ts if not t[2]) for ts in threads_by_mm]
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
                for _ in mmap.do_mmap(self.k, boot, vma, False):
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
        runner = self.runner
        while True:
            te = self._queue[0][0] if self._queue else INF
            tp = runner.next_time()
            if min(te, tp) >= end:
                break
            if te <= tp:
                ev = self.pop_event()
                self.now = max(ev[0], start)
                self._handle(ev, self.now)
            else:
                self.now = max(tp, start)
                runner.step()

    def next_time(self) -> int:
        return min(self.next_event_time(), self.runner.next_time())

    def publish(self, slots) -> None:
        slots[:] = 0

    def _handle(self, ev, t: int) -> None:
        kind, p = ev[4], ev[5]
        k = self.k
        if kind == P.FAULT:
            tid, vpage, access, cpu, segv_skip = p
            self._user(lambda task: memory.handle_mm_fault(k, task, vpage, access), t, cpu, tid,
                       segv_skip)
        elif kind == P.SYSCALL:
            tid, op, args, cpu = p
            self._user(lambda task: self._syscall(task, op, args), t, cpu, tid)
        elif kind in (P.SHOOTDOWN_DONE, P.ACK):
            w = self._waiting[p[0]]
            w[1] -= 1
            if kind == P.SHOOTDOWN_DONE:
                k.ipis_by_source[w[2]] += p[1]
            if w[1] <= 0:
                del self._waiting[p[0]]
                self.runner.resume(w[0], t)
        elif kind == P.HOLDS_REPLY:
            k.policy.holds_reply(*p, t)
        elif kind == P.YOUNG:
            for vp in p:
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
                self.send(task.cpu, P.REPLY, (task.tid, 1), task.t)
                return
            self.send(task.cpu, P.REPLY, (task.tid, 0), task.t)
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
        if op in ("mmap", "munmap"):
            mm = k.mms[vma.mm]
            while mm.mmap_locked:
                yield Wait(("mmap_lock", mm.id))
            mm.mmap_locked = True
            try:
                if op == "mmap":
                    yield from mmap.do_mmap(k, task, vma, bool(extra), first, npages)
                else:
                    yield from mmap.do_munmap(k, task, vma, first, npages)
            finally:
                mm.mmap_locked = False
                self.runner.notify(("mmap_lock", mm.id), task.t)
        elif op == "mprotect":
            yield from mprotect.do_mprotect(k, task, vma, extra, first, npages)
        elif op == "madvise":
            advise = madvise.madvise_pageout if extra == "pageout" else madvise.madvise_dontneed
            yield from advise(k, task, vma, first, npages)

    # -- shootdowns -----------------------------------------------------------------------
    def _dispatch(self, proc, req) -> None:
        if not isinstance(req, Shootdown):
            raise RuntimeError(f"coordinator: unknown request {req!r}")
        self._token += 1
        token, t = self._token, proc.t
        flush = (req.mm, req.start, req.npages, req.new_gen)
        source = proc.source or "other"
        if not proc.kthread:
            self.send(proc.cpu, P.DO_SHOOTDOWN, (token, list(req.cpumask), *flush,
                                                 int(req.freed_tables)), t)
            self._waiting[token] = [proc, 1, source]
            return
        if KTHREAD_CPU in req.cpumask:
            self.send(KTHREAD_CPU, P.LOCAL_FLUSH, flush, t)
        targets = ipi_targets(self.engine.pub, req.cpumask, KTHREAD_CPU, req.mm,
                              req.freed_tables)
        if not targets:
            self.runner.resume(proc, t)
            return
        self.k.ipis_by_source[source] += len(targets)
        send_ipis(self, self.kthread_stats, self.k.cost, token, targets, flush, t)
        self._waiting[token] = [proc, len(targets), source]

    def local_flush(self, task, mm: int, start: int, npages: int, new_gen: int) -> None:
        self.send(task.cpu, P.LOCAL_FLUSH, (mm, start, npages, new_gen), max(task.t, self.now))
