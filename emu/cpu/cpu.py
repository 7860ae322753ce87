"""Cpu(i): one simulated CPU with its own TLBs, running the threads placed on it.

Within a window the CPU interleaves its queued events (IPIs, replies from the
coordinator) with its current thread's actions, in time order. A CPU with nothing to run
does not move its clock: it jumps to its next event when that event is handled, so a
blocked thread resumes exactly at its reply's timestamp. Accesses go through the
L1 dTLB or iTLB, then the STLB, then a page walk of the rank's page-table replica; a
missing or insufficient PTE is a page fault sent to the coordinator. Every access
through a TLB entry is referred to the safety oracle.
"""

from collections import deque

from emu import protocol as P
from emu.engine.component import INF, Component
from emu.hw.tlb_cache import VPAGE_BITS, TLBArray, tlb_key
from emu.mm import tlb as x86
from emu.mm.replica import PTE, VCID
from emu.oracle import OracleLog, judge
from emu.workload.patterns import EXEC, READ, WRITE

STATS = ("tlb_shootdowns", "dtlb_load_misses", "dtlb_store_misses", "itlb_load_misses",
         "nr_tlb_remote_flush_received", "nr_tlb_local_flush_all", "nr_tlb_local_flush_one",
         "tlb_flush_on_switch", "page_faults", "context_switches", "accesses", "idle_ns",
         "ipi_handler_ns", "segv_skipped", "miss_first_touch", "miss_flush_refill",
         "miss_hot_refill", "ipi_unneeded")
LOST = (-1, -1)                  # Thread.hot_at after an INVLPG hit one of its hot pages

VPAGE_MASK = (1 << VPAGE_BITS) - 1
YOUNG_REPORT_PAGES = 64          # accessed-bit reports: at least this many pages...
YOUNG_REPORT_NS = 50_000         # ...or this much simulated time since the last report
HISTORY = 64                     # own (mm, lazy) changes kept, to judge IPIs sent in the past


def least_request_ns(cost: dict) -> int:
    """The least a running thread spends before its next request reaches the kernel: a
    system call's entry, a page walk and fault, or the context switch that starts it."""
    return min(cost["syscall_ns"], cost["page_walk_ns"] + cost["page_fault_ns"],
               cost["context_switch_ns"])


def answer_lookahead(cost: dict) -> dict[int, int]:
    """Per kind of message from the kernel to a CPU, the least simulated time from the
    message's time to the next ordered message the CPU can send because of it: an IPI's
    ack travels `ipi_latency_ns` back (also from a CPU that does not take it); a woken
    thread pays at least least_request_ns first; a thread sent to wait for I/O leaves its
    CPU to another thread only after a context switch; a local flush is not answered; a
    frame query (the ideal policy's) is answered at its own time. The lookahead of a
    conservative simulation, as SST's link latencies: the coordinator's for what it
    sends, the CPU's for what it has queued (Cpu.answer_bound)."""
    return {P.IPI: cost["ipi_latency_ns"], P.REPLY: least_request_ns(cost),
            P.IO_WAIT: cost["context_switch_ns"], P.LOCAL_FLUSH: INF, P.HOLDS_QUERY: 0}


class Cpu(Component):
    """A CPU; `cid` equals the Linux CPU number."""

    trace = None                # an emu.trace.Recorder under --trace

    def __init__(self, cpu: int, coordinator: int, ncpus: int, sc: dict, replica, threads,
                 track_frames: bool = False):
        super().__init__(cpu)
        m, c = sc["machine"], sc["cost"]
        self.coordinator, self.ncpus = coordinator, ncpus
        self.replica = replica
        track = track_frames                    # the ideal policy asks who caches a frame
        self.dtlb = TLBArray(m["dtlb_entries"], m["dtlb_ways"], track)
        self.itlb = TLBArray(m["itlb_entries"], m["itlb_ways"], track)
        self.stlb = TLBArray(m["stlb_entries"], m["stlb_ways"], track)
        self.slots = [[-1, 0, 0] for _ in range(m["pcid_slots"])]  # [mm, tlb_gen, epoch]
        self.next_asid = 0
        self.loaded_mm, self.loaded_slot, self.is_lazy = -1, 0, False
        self.borrowed_mm = -1            # idle's active_mm: the mm it went lazy on
        self.cpumask_bits = 0
        self.prev_state = (P.pack_tlbstate(-1, False), 0)  # at the last publication...
        self.changes: list[tuple[int, int, int]] = []      # ...and (time, state, bits) since
        self.history = deque([(-1, -1, False)], maxlen=HISTORY)  # (time, mm, lazy): own past
        self.joined_epoch = -10
        self.cost = c
        self.answers = answer_lookahead(c)
        self.request_ns = least_request_ns(c)
        self.walk_ns, self.slice_ns = c["page_walk_ns"], sc["kernel"]["sched_base_slice_ns"]
        self.mem_ns = (c["dram_access_ns"], c["cxl_access_ns"])
        self.dram_pages = m["dram_pages"]
        self.threads = {t.tid: t for t in threads}
        self.runq = deque(threads)
        self.current = None
        self.slice_end = 0
        self.stats = dict.fromkeys(STATS, 0)
        self.oracle = OracleLog(sc["oracle"]["max_listed"])
        self.oracle_on = sc["oracle"]["enabled"]
        self.young: set[int] = set()
        self.young_sent_at = 0
        self.hot_threads = [t for t in threads if t.hot]
        self.miss_cause = ""             # set while the hot set is walked back in
        self.live = sum(1 for t in threads if not t.daemon)
        self.daemons_left = sum(1 for t in threads if t.daemon)

    # -- TLB maintenance (called from mm/tlb.py) ------------------------------------------
    def flush_slot(self, slot: int) -> None:
        self.slots[slot][2] += 1
        self.clock += self.cost["full_flush_ns"]

    def invlpg_range(self, start: int, npages: int) -> None:
        for th in self.hot_threads:
            if th.mm == self.loaded_mm and any(start <= v < start + npages for v, _ in th.hot):
                th.hot_at = LOST
        tag = self._tag()
        for v in range(start, start + npages):
            k = tlb_key(tag, v)
            self.dtlb.invalidate(k, v)
            self.itlb.invalidate(k, v)
            self.stlb.invalidate(k, v)
        self.clock += npages * self.cost["invlpg_ns"]

    def join_cpumask(self, mm: int) -> None:
        if not self.cpumask_bits & 1 << mm:
            self.cpumask_bits |= 1 << mm
            self._record_change()

    def leave_cpumask(self, mm: int) -> None:
        if self.cpumask_bits & 1 << mm:
            self.cpumask_bits &= ~(1 << mm)
            self._record_change()

    def set_tlbstate(self, mm: int, lazy: bool) -> None:
        """Change the loaded mm / lazy flag, remembering when (for initiators' reads)."""
        if (mm, lazy) != (self.loaded_mm, self.is_lazy):
            self.loaded_mm, self.is_lazy = mm, lazy
            self._record_change()

    def _record_change(self) -> None:
        self.history.append((self.clock, self.loaded_mm, self.is_lazy))
        state = (self.clock, P.pack_tlbstate(self.loaded_mm, self.is_lazy), self.cpumask_bits)
        if self.changes and self.changes[-1][0] == self.clock:
            self.changes[-1] = state      # several changes at one instant: keep the last
        else:
            self.changes.append(state)

    def tlbstate_at(self, t: int) -> tuple[int, bool] | None:
        """(loaded mm, is_lazy) at simulated time `t`, from this CPU's own recent past;
        None if `t` is older than what it remembers."""
        for when, mm, lazy in reversed(self.history):
            if when <= t:
                return mm, lazy
        return None

    def switch_to_init_mm(self) -> None:
        """The lazy drop in flush_tlb_func(): switch_mm_irqs_off() to init_mm. Since 6.13
        ("x86/mm/tlb: Update mm_cpumask lazily", 209954cbc7d0) the CPU stays in the mm's
        mm_cpumask until an IPI for that mm finds it elsewhere (flush_tlb_func())."""
        self.set_tlbstate(-1, False)

    def holds_frame(self, pfn: int) -> bool:
        """Whether any valid TLB entry still translates to `pfn` (global knowledge)."""
        for tlb in (self.dtlb, self.itlb, self.stlb):
            for key in tlb.keys_for_frame(pfn):
                tag = key >> VPAGE_BITS
                if self.slots[tag >> 24][2] & 0xFFFFFF == tag & 0xFFFFFF:
                    return True
        return False

    def _tag(self) -> int:
        s = self.slots[self.loaded_slot]
        return (self.loaded_slot << 24) | (s[2] & 0xFFFFFF)

    # -- the window -----------------------------------------------------------------------
    def run_window(self, start: int, end: int) -> None:
        """Run until `end`, the window's bound on how far ahead of the slowest component
        this CPU may go; with nothing runnable, stop where the next event will be.

        At equal times this CPU's own work comes first: a step that starts at an event's
        time, or going idle then, precedes the event. An event stamped with the very time
        this CPU reaches may be delivered before it gets there or only after (which one
        depends on where the windows fall, e.g. a reply sent at the kernel's earliest
        pending time, up to which the CPU runs); the order may not."""
        if not self.threads and not self._queue:
            return          # never runs anything: same results whether its rank is dormant
        x86.catch_up_after_join(self)
        if self.daemons_left and not self._anyone_live():
            self._stop_daemons()
        while True:
            ev_t = self._queue[0][0] if self._queue else INF
            if ev_t < self.clock:
                self._handle(self.pop_event())
                continue
            wake = self._timer()
            if wake <= self.clock:
                self._wake_sleepers()
                continue
            if self.clock >= end:
                break
            th = self.current
            if th is not None and th.state == "ready":
                self._run_thread(th, min(ev_t + 1, wake, end))
            elif th is None and self._ready_thread():
                self._schedule()
            else:
                self._go_idle()
                if ev_t == self.clock:          # all of them, before choosing what runs
                    while self._queue and self._queue[0][0] == self.clock:
                        self._handle(self.pop_event())
                    continue
                nxt = min(ev_t, wake)
                if nxt >= end:
                    break
                self.stats["idle_ns"] += nxt - self.clock
                self.clock = nxt

    def next_time(self) -> int:
        t = min(self.next_event_time(), self._timer())
        cur = self.current
        if (cur is not None and cur.state == "ready") or (cur is None and self._ready_thread()):
            t = min(t, self.clock)
        return t

    def answer_bound(self, next_time: int) -> int:
        """The earliest simulated time at which this CPU could send the kernel an ordered
        message (a request or an ack) if nothing more reached it: the answers to its
        queued messages (answer_lookahead; a reply, by the woken thread's next request),
        a sleeper's wake-up plus the least request, and the running thread's next
        request. The kernel runs up to the least of these over all CPUs (engine.py), so
        a CPU inside a touch lets it run further than one about to make a system call."""
        if next_time >= INF:
            return INF
        answers, bound = self.answers, INF
        for ev in self._queue:
            if ev[4] == P.REPLY:
                bound = min(bound, ev[0] + self.next_request_ns(self.threads[ev[5][0]], 1))
            else:
                bound = min(bound, ev[0] + answers[ev[4]])     # INF + t: no answer
        wake = self._timer()
        if wake < INF:
            bound = min(bound, wake + self.request_ns)
        th = self.current
        if th is not None and th.state == "ready":
            bound = min(bound, self.clock + self.next_request_ns(th))
        elif th is None and self._ready_thread():
            bound = min(bound, self.clock + self.request_ns)
        return bound

    def next_request_ns(self, th, skipped: int = 0) -> int:
        """The least thread `th` spends running before its next request, `skipped`
        accesses of its touch aside (a fault's reply may skip one, SIGSEGV): inside a
        touch, a fault needs a page walk and a fault's entry, and a system call comes
        only after the touch's remaining accesses (each its work and at least a DRAM
        access)."""
        act = th.action
        if act is None or act[0] != "touch":
            return self.request_ns
        left = len(act[1]) - th.pos - skipped
        return min(self.walk_ns + self.cost["page_fault_ns"],
                   left * (min(self.mem_ns) + act[3]) + self.request_ns)

    def wake_time(self, next_time: int) -> int:
        """When run_window would act beyond this CPU's events, timers and ready threads:
        going idle (lazy TLB, reporting accessed bits) once its clock is inside a window,
        and two things that act in the next window whatever the clock (-1): the join
        guard in the window after a join (catch_up_after_join), and daemons on a CPU with
        no live thread, which stop once no CPU has one (_anyone_live reads the others)."""
        if self.daemons_left and not self.live:
            return -1
        if self.joined_epoch >= self.engine.epoch and self.loaded_mm >= 0 and not self.is_lazy:
            return -1
        if self.young or (self.current is None and not self.is_lazy and self.loaded_mm >= 0):
            return min(next_time, self.clock)
        return next_time

    def _ready_thread(self) -> bool:
        return any(th.state == "ready" for th in self.runq)

    def publish(self, slots) -> None:
        slots[P.PUB_LOADED_MM] = self.loaded_mm
        slots[P.PUB_LAZY] = int(self.is_lazy)
        slots[P.PUB_CPUMASK] = self.cpumask_bits
        slots[P.PUB_LIVE] = self.live
        slots[P.PUB_PROGRESS] = sum(th.units_done for th in self.threads.values())
        slots[P.PUB_PREV_STATE], slots[P.PUB_PREV_MASK] = self.prev_state
        slots[P.PUB_CLOCK] = self.clock
        ch = self.changes
        slots[P.PUB_NCHANGES] = len(ch)
        slots[P.PUB_T_LAST] = ch[-1][0] if ch else 0
        for i, change in enumerate(ch[:P.PUB_MAX_CHANGES]):
            slots[P.PUB_CHANGES + 3 * i:P.PUB_CHANGES + 3 * i + 3] = change
        self.prev_state = (P.pack_tlbstate(self.loaded_mm, self.is_lazy), self.cpumask_bits)
        ch.clear()

    @staticmethod
    def republish(rows) -> None:
        """What CPUs publish after a window in which they did nothing, from what they
        published last (numpy `rows`, one per CPU, changed in place): the same state and
        no changes since. The leader writes it for CPUs whose rank slept (sync.py)."""
        rows[:, P.PUB_PREV_STATE] = P.pack_tlbstate(rows[:, P.PUB_LOADED_MM],
                                                    rows[:, P.PUB_LAZY])
        rows[:, P.PUB_PREV_MASK] = rows[:, P.PUB_CPUMASK]
        rows[:, P.PUB_NCHANGES] = 0
        rows[:, P.PUB_T_LAST] = 0

    def _anyone_live(self) -> bool:
        """Whether any CPU had a non-daemon thread left, as published last window."""
        return self.live > 0 or bool(self.engine.pub[:self.ncpus, P.PUB_LIVE].any())

    def _stop_daemons(self) -> None:
        for th in self.threads.values():
            if th.daemon and th.state != "done":
                if th.state == "kernel":
                    continue                   # finishes its system call first
                th.state, th.exit_ns = "done", self.clock
                self.daemons_left -= 1
        if self.current is not None and self.current.state == "done":
            self.current = None

    # -- scheduling -----------------------------------------------------------------------
    def _timer(self) -> int:
        t = INF
        for th in self.threads.values():
            if th.state == "sleep" and th.wake_at < t:
                t = th.wake_at
        return t

    def _wake_sleepers(self) -> None:
        for th in self.threads.values():
            if th.state == "sleep" and th.wake_at <= self.clock:
                th.state = "ready"
        self._schedule()

    def _go_idle(self) -> None:
        """Nothing runnable: idle borrows the mm (lazy TLB mode); report accessed bits."""
        if self.current is None and not self.is_lazy and self.loaded_mm >= 0:
            self.set_tlbstate(self.loaded_mm, True)
            self.borrowed_mm = self.loaded_mm
        if self.young:
            self._report_young()
        if self.trace is not None and self.current is None:
            self.trace.cpu_state(self.cid, "idle", self.clock)

    def _report_young(self) -> None:
        self.send(self.coordinator, P.YOUNG, sorted(self.young), self.clock)
        self.young.clear()
        self.young_sent_at = self.clock

    def _schedule(self) -> None:
        """Pick the next ready thread round robin; keep the current one if it is alone;
        idle (and so lazy) if none is ready. A thread in the kernel keeps its CPU."""
        cur = self.current
        if cur is not None and cur.state == "kernel":
            return
        for _ in range(len(self.runq)):
            th = self.runq[0]
            self.runq.rotate(-1)
            if th.state == "ready" and th is not cur:
                self._switch_to(th)
                return
        if cur is not None and cur.state != "ready":
            self.current = None

    def _switch_to(self, th) -> None:
        prev_mm, self.borrowed_mm = self.borrowed_mm, -1
        if self.current is not None and self.current.state == "ready":
            self.current.user_until = self.clock          # preempted
        self.current = th
        self.stats["context_switches"] += 1
        self.clock += self.cost["context_switch_ns"]
        x86.switch_mm_irqs_off(self, th.mm)
        self.slice_end = self.clock + self.slice_ns
        if prev_mm >= 0 and int(self.engine.pub[self.coordinator, P.PUB_LUF_PENDING_MMS]) \
                >> prev_mm & 1:
            self._finish_task_switch(th, prev_mm)

    def _finish_task_switch(self, th, prev_mm: int) -> None:
        """Idle -> task: finish_task_switch() drops idle's borrowed mm (rq->prev_mm) and,
        under LUF, runs luf_flush_mm(prev_mm) synchronously (v12 patch 19). The kernel
        side runs it as a task on this CPU; the thread waits in the kernel meanwhile.
        Sent only when the coordinator published prev_mm as having CPUs not yet done."""
        if self.trace is not None:
            self.trace.cpu_state(self.cid, "finish_task_switch", self.clock,
                                 f'{{"tid":{th.tid},"prev_mm":{prev_mm}}}')
        self.send(self.coordinator, P.SWITCH_FLUSH, (th.tid, prev_mm, self.cid), self.clock)
        th.state = "kernel"

    def _block(self, th, state: str) -> None:
        th.state, th.user_until = state, self.clock
        if state != "kernel":
            self._schedule()

    # -- running a thread -----------------------------------------------------------------
    def _run_thread(self, th, limit: int) -> None:
        if self.loaded_mm != th.mm or self.is_lazy:
            x86.switch_mm_irqs_off(self, th.mm)
        if self.trace is not None:
            self.trace.user(self.cid, th, self.clock)
        while self.clock < limit and th.state == "ready":
            if self.clock >= self.slice_end and len(self.runq) > 1:
                self.slice_end = self.clock + self.slice_ns
                self._schedule()
                return
            act = th.action or th.next_action()
            kind = act[0]
            if kind == "touch":
                if self._touch(th, act, limit):
                    th.action = None
            elif kind == "syscall":
                th.action = None
                if self.trace is not None:
                    self.trace.syscall(self.cid, th, act[1], self.clock)
                self.clock += self.cost["syscall_ns"]
                self.send(self.coordinator, P.SYSCALL, (th.tid, act[1], act[2], self.cid),
                          self.clock)
                self._block(th, "kernel")
            elif kind == "sleep":
                th.action = None
                th.wake_at = self.clock + act[1]
                self._block(th, "sleep")
            elif kind == "tag":
                th.action = None
                th.tags.setdefault(act[1], []).append(self.clock)
            else:  # exit
                th.state, th.exit_ns, th.action = "done", self.clock, None
                if th.daemon:
                    self.daemons_left -= 1
                else:
                    self.live -= 1
                    self.send(self.coordinator, P.THREAD_EXIT, (th.tid, th.mm), self.clock)
                self._schedule()

    def _touch(self, th, act, limit: int) -> bool:
        """Run accesses of a touch action until `limit`; True when the action is done."""
        if th.hot and th.hot_at != self._slot_epoch() and not self._hot_refill(th):
            return False
        vpages, kinds, work = act[1], act[2], act[3]
        single = isinstance(kinds, int)
        n = len(vpages)
        access = self._access
        i = first = th.pos
        while i < n:
            if self.clock >= limit or not access(th, vpages[i], kinds if single else kinds[i]):
                break                          # out of time, or faulted: resume here later
            self.clock += work
            i += 1
        self.stats["accesses"] += i - first
        th.pos = i
        return i == n

    def _access(self, th, vpage: int, kind: int) -> bool:
        """One access through the TLBs; False if it faulted (the thread now waits)."""
        key = tlb_key(self._tag(), vpage)
        l1 = self.itlb if kind == EXEC else self.dtlb
        entry = l1.lookup(key, vpage)
        if entry is None:
            entry = self.stlb.lookup(key, vpage) or self._fill(self.stlb, th, key, vpage, kind)
            if entry is None:
                return False
            l1.insert(key, vpage, entry)
        pte = entry[0]
        if kind == WRITE and not pte & 2:
            l1.invalidate(key, vpage)         # write to a read-only entry: walk again
            self.stlb.invalidate(key, vpage)
            entry = self._fill(self.stlb, th, key, vpage, kind)
            if entry is None:
                return False
            l1.insert(key, vpage, entry)
            pte = entry[0]
        if self.oracle_on:
            self.oracle.checked += 1
            if self.replica.at(PTE, vpage, self.clock) != pte:
                verdict = judge(self.replica, vpage, entry, kind == WRITE)
                if verdict:
                    self.oracle.record(verdict, self.cid, self.clock, th.mm, vpage, pte >> 2)
        self.clock += self.mem_ns[0 if (pte >> 2) < self.dram_pages else 1]
        return True

    # -- the hot working set ---------------------------------------------------------------
    def _slot_epoch(self) -> tuple[int, int]:
        return self.loaded_slot, self.slots[self.loaded_slot][2]

    def _hot_refill(self, th) -> bool:
        """The thread's hot pages are used continuously, so they cost nothing while its
        PCID slot keeps them; after a full flush of the slot (a new epoch) or an INVLPG of
        one of them, its next step walks each one missing from the TLBs again: one page
        walk each, charged and counted as a miss. False if a walk faulted (resumed later)."""
        self.miss_cause = "miss_first_touch" if th.hot_at is None else "miss_hot_refill"
        try:
            tag = self._tag()
            for vpage, kind in th.hot:
                key = tlb_key(tag, vpage)
                l1 = self.itlb if kind == EXEC else self.dtlb
                if l1.lookup(key, vpage) is None:
                    entry = self.stlb.lookup(key, vpage) or \
                        self._fill(self.stlb, th, key, vpage, kind)
                    if entry is None:
                        return False
                    l1.insert(key, vpage, entry)
        finally:
            self.miss_cause = ""
        th.hot_at = self._slot_epoch()
        return True

    def _flushed(self, vpage: int) -> bool:
        """Whether the STLB still holds a stale entry for `vpage` from an older epoch of
        the loaded PCID slot: the translation was lost to a full flush, not to capacity."""
        want = self.loaded_slot
        for key in self.stlb.sets[vpage % self.stlb.nsets]:
            if key & VPAGE_MASK == vpage and key >> (VPAGE_BITS + 24) == want:
                return True
        return False

    def _fill(self, stlb, th, key: int, vpage: int, kind: int):
        """Walk the page table into the STLB; None if the walk faulted."""
        cause = self.miss_cause or ("miss_flush_refill" if self._flushed(vpage)
                                    else "miss_first_touch")
        self.stats[cause] += 1
        entry = self._walk(th, vpage, kind)
        if entry is not None:
            stlb.insert(key, vpage, entry)
        return entry

    def _walk(self, th, vpage: int, kind: int):
        """Page walk of the replica; on a fault, send it and block the thread."""
        st = self.stats
        if kind == READ:
            st["dtlb_load_misses"] += 1
        elif kind == WRITE:
            st["dtlb_store_misses"] += 1
        else:
            st["itlb_load_misses"] += 1
        self.clock += self.walk_ns
        replica = self.replica
        pte = replica.at(PTE, vpage, self.clock)
        if pte >= 0 and pte & 1 and (kind != WRITE or pte & 2):
            self.young.add(vpage)
            if len(self.young) >= YOUNG_REPORT_PAGES or \
                    self.clock - self.young_sent_at >= YOUNG_REPORT_NS:
                self._report_young()
            pfn = pte >> 2
            return (pte, replica.at(VCID, vpage, self.clock), replica.frame_gen[pfn])
        st["page_faults"] += 1
        if self.trace is not None:
            self.trace.fault(self.cid, th, kind, vpage, self.clock)
        self.clock += self.cost["page_fault_ns"]
        skip = th.action[4] if th.action else 0
        self.send(self.coordinator, P.FAULT,
                  (th.tid, vpage, kind, self.cid, skip, self.next_request_ns(th, 1)), self.clock)
        self._block(th, "kernel")
        return None

    # -- events ---------------------------------------------------------------------------
    def _handle(self, ev) -> None:
        kind, payload = ev[4], ev[5]
        if kind == P.IPI:
            self._on_ipi(ev[0], ev[1], payload)
        elif kind == P.REPLY:
            th = self.threads[payload[0]]
            if th.state == "done":
                return
            if len(payload) > 1 and payload[1]:      # SIGSEGV, handled by skipping it
                th.pos += 1
                self.stats["segv_skipped"] += 1
            th.state = "ready"
            if self.current is None:
                self._switch_to(th)
        elif kind == P.IO_WAIT:
            th = self.threads[payload[0]]
            if th.state == "kernel":
                th.state = "io"
                self._schedule()
        elif kind == P.LOCAL_FLUSH:
            mm = payload[0]
            if mm == P.NO_MM or mm == self.loaded_mm:       # late as an IPI can be
                late_at = ev[0] if ev[0] < self.clock else -1
                x86.flush_tlb_func(self, *payload, local=True, late_at=late_at)
                if late_at >= 0:
                    self._refill_after_late_flush(late_at)
        elif kind == P.HOLDS_QUERY:
            held = [pfn for pfn in payload[1] if self.holds_frame(pfn)]
            self.send(self.coordinator, P.HOLDS_REPLY, (payload[0], held, self.cid), ev[0])
        else:
            raise RuntimeError(f"CPU {self.cid}: unexpected event kind {kind}")

    def _on_ipi(self, arrival: int, src: int, payload) -> None:
        """flush_tlb_func() in the interrupt handler. The interrupt is taken at its
        arrival time: the ack is stamped from it even when this CPU ran past it within
        the window (the flush's effect on the TLBs is then applied at the CPU's clock,
        late by at most one window; docs/design.md); the handler's cost is charged here.
        An IPI the kernel would not have sent, judged on this CPU's state at the send
        time, is not taken (_unneeded_ipi)."""
        token, _initiator, mm, start, npages, new_gen, sent, condition = payload
        if condition != x86.IPI_ALWAYS:
            state = self.tlbstate_at(sent)
            if state is not None and \
                    not x86.wants_ipi(*state, mm, condition == x86.IPI_IF_WANTED_TRIM):
                self._unneeded_ipi(token, src, arrival)
                return
        before = self.clock
        x86.flush_tlb_func(self, mm, start, npages, new_gen, local=False,
                           late_at=arrival if arrival < before else -1)
        self.clock += self.cost["ipi_handler_ns"]
        spent = self.clock - before
        self.stats["ipi_handler_ns"] += spent
        ack_at = arrival + spent + self.cost["ipi_latency_ns"]
        if self.trace is not None:
            self.trace.ipi(self.cid, token, arrival, spent, ack_at)
        self.send(src, P.ACK, (token, 1), ack_at)
        if arrival < before:
            self._refill_after_late_flush(arrival)

    def _unneeded_ipi(self, token: int, src: int, arrival: int) -> None:
        """An IPI the initiator sent because it could not know this CPU's state at its
        time (e.g. a thread told to wait for I/O on a CPU with others, or more changes in a
        window than the CPU publishes): should_flush_tlb() on
        the state this CPU really had says the kernel would not have sent it. It is not
        taken (no flush, no handler cost, not in the TLB row); the ack, back after
        `ipi_latency_ns`, only tells the initiator, which does not wait on it."""
        self.stats["ipi_unneeded"] += 1
        self.send(src, P.ACK, (token, 0), arrival + self.cost["ipi_latency_ns"])

    def _refill_after_late_flush(self, arrival: int) -> None:
        """A flush taken late (this CPU ran past its arrival) made every thread that ran
        user code here after the arrival walk its hot set again at its next step: the
        one running then, and one switched in, or blocked, since. Pay those refills now,
        so flushes applied back to back at a window's start, or while the thread waits
        in the kernel, are not refilled only once. Only when every hot page is mapped:
        the walks then cannot fault."""
        replica, clock = self.replica, self.clock
        epoch = self._slot_epoch()
        for th in self.hot_threads:
            if th.mm != self.loaded_mm or th.state == "done" or th.hot_at is None \
                    or th.hot_at == epoch:
                continue
            if not (th is self.current and th.state == "ready") and th.user_until <= arrival:
                continue
            ptes = [(replica.at(PTE, v, clock), k) for v, k in th.hot]
            if all(pte >= 0 and pte & 1 and (k != WRITE or pte & 2) for pte, k in ptes):
                self._hot_refill(th)
