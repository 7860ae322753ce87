"""include/linux/mmap_lock.h, with kernel/locking/rwsem.c's queue: mmap_lock and the
per-VMA locks of kernel 6.13.

mmap() and mprotect() hold mmap_lock for write (vm_mmap_pgoff(), do_mprotect_pkey());
munmap() takes it for write, detaches the VMAs and downgrades it to read for the zap
(__vm_munmap() -> do_vmi_align_munmap() -> vms_complete_munmap_vmas():
mmap_write_downgrade(), then mmap_read_unlock()); madvise(MADV_DONTNEED, MADV_PAGEOUT)
holds it for read (madvise_need_mmap_write() is 0 for both), and so does the NUMA scan
if it can (task_numa_work(): mmap_read_trylock(), else no scan that period). A writer
write-locks each VMA it changes (vma_start_write(), which waits for the faults inside
it) until it unlocks or downgrades mmap_lock (vma_end_write_all()). A page fault takes
only its VMA's lock (lock_vma_under_rcu()); when that VMA is write-locked it falls back
to mmap_read_lock().

Waiters queue oldest first. A release with a reader at the head grants every queued
reader (rwsem_mark_wake(); a downgrade wakes readers only). A release with a writer at
the head only wakes it: the lock is free until the writer runs again (`wake_ns`: the
wake-up IPI to its idle CPU and the switch back to it) and takes it in
rwsem_try_write_lock(). Until then any task that asks for it takes it, writer
(rwsem_optimistic_spin()) or reader (the reader's optimistic lock stealing in
rwsem_down_read_slowpath()), unless the first waiter has set HANDOFF, which it does
when it finds the lock taken after waiting longer than RWSEM_WAIT_TIMEOUT. With HANDOFF
set it spins on a writer owner and takes the lock at its release, or sleeps behind
readers. A task that asks while the lock is held, or free with HANDOFF set, queues
(the trylock fast path fails whenever anyone queues).

A user task that has to wait sleeps (TASK_UNINTERRUPTIBLE): its thread leaves its CPU,
which goes idle and so lazy, and flushes sent meanwhile skip it unless they free page
tables (Coordinator.sleep_thread). emu keeps the thread off its CPU until its call
returns, where the kernel would run the rest of the call on it, and it neither spins
on arrival nor stays on its CPU while it spins with HANDOFF set
(docs/simplifications.md).
"""

from collections import deque

from emu.engine.process import Wait

RWSEM_WAIT_TIMEOUT_NS = 4_000_000     # DIV_ROUND_UP(HZ, 250) jiffies: 4 ms at HZ 250 or 1000


def wake_ns(cost: dict) -> int:
    """From a wake-up to the woken task running: the IPI to its idle CPU and the
    context switch (try_to_wake_up() -> ttwu_queue_wakelist(), then schedule())."""
    return cost["ipi_latency_ns"] + cost["context_switch_ns"]


class Waiter:
    """struct rwsem_waiter: the task, what it waits for, and since when (its timeout is
    that plus RWSEM_WAIT_TIMEOUT_NS)."""

    __slots__ = ("task", "write", "since")

    def __init__(self, task, write: bool):
        self.task, self.write, self.since = task, write, task.t


class RwSem:
    """struct rw_semaphore: how many readers hold it, whether a writer does, whether the
    first waiter set HANDOFF, and the queue of Waiters, oldest first."""

    __slots__ = ("readers", "writer", "handoff", "queue")

    def __init__(self):
        self.readers, self.writer, self.handoff, self.queue = 0, False, False, deque()

    def free_for(self, write: bool) -> bool:
        return not self.writer and (self.readers == 0 or not write)

    def take(self, write: bool) -> None:
        if write:
            self.writer = True
        else:
            self.readers += 1


class MmLocks:
    """An mm's mmap_lock and its VMAs' locks: faults inside each VMA (vma_start_read()),
    the VMAs a writer has write-locked, and a writer waiting for a VMA's faults."""

    __slots__ = ("mmap_lock", "vma_readers", "vma_write_locked", "vma_writer")

    def __init__(self):
        self.mmap_lock = RwSem()
        self.vma_readers: dict[int, int] = {}
        self.vma_write_locked: set[int] = set()
        self.vma_writer: dict[int, object] = {}


def _sleep(k, task):
    """Sleep until a release hands `task` what it waits for."""
    k.coord.sleep_thread(task)
    yield Wait(task)


def try_down(locks: MmLocks, write: bool) -> bool:
    """mmap_write_trylock() / mmap_read_trylock(), the fast path: taken if free for it
    and nobody queues (RWSEM_FLAG_WAITERS)."""
    sem = locks.mmap_lock
    if sem.queue or not sem.free_for(write):
        return False
    sem.take(write)
    return True


def _steal(sem: RwSem) -> bool:
    """The slow path's lock stealing: a free lock is taken past a woken writer that has
    not run yet, unless HANDOFF is set. Readers holding it make a reader queue behind
    the waiting writer instead (rwsem_down_read_slowpath(): rcnt > 1)."""
    return not sem.writer and sem.readers == 0 and not sem.handoff


def down(k, task, locks: MmLocks, write: bool):
    """mmap_write_lock() / mmap_read_lock(): at once if free (try_down(), or stolen),
    else queued; a reader is granted it by a release, a writer is woken to try."""
    sem = locks.mmap_lock
    if try_down(locks, write):
        return
    if sem.queue and _steal(sem):
        sem.take(write)
        return
    waiter = Waiter(task, write)
    sem.queue.append(waiter)
    while True:
        yield from _sleep(k, task)
        if not write:
            return                                    # rwsem_mark_wake() granted it
        if sem.free_for(True):                        # rwsem_try_write_lock()
            sem.queue.popleft()                       # woken only at the head
            sem.handoff = False
            sem.take(True)
            return
        if task.t - waiter.since > RWSEM_WAIT_TIMEOUT_NS:
            sem.handoff = True


def _wake_up(k, task, t: int) -> None:
    """A sleeper runs again once its CPU has switched back to it (wake_ns)."""
    k.coord.runner.notify(task, t + wake_ns(k.cost))


def _wake(k, sem: RwSem, t: int, by_writer: bool = False, readers_only: bool = False) -> None:
    """rwsem_mark_wake() on a release (`by_writer`: of the write lock): a writer at the
    head is woken to try for the lock; a reader at the head brings every queued reader
    in with it. A head that set HANDOFF has held everyone else off since, so the owner
    it failed against is the one releasing now: a writer, on which it spins
    (rwsem_spin_on_owner()) and so takes the lock at once, or readers, behind which it
    slept (a writer that downgraded became a reader owner)."""
    if not sem.queue:
        return
    head = sem.queue[0]
    if head.write:
        if readers_only or not sem.free_for(True):
            return
        if sem.handoff and by_writer:
            k.coord.runner.notify(head.task, t)
        else:
            _wake_up(k, head.task, t)
        return
    if sem.writer:
        return
    kept = deque()
    for waiter in sem.queue:
        if waiter.write:
            kept.append(waiter)
        else:
            sem.take(False)
            _wake_up(k, waiter.task, t)
    sem.queue = kept


def up(k, task, locks: MmLocks, write: bool) -> None:
    """mmap_write_unlock() (which ends the VMAs' write locks) / mmap_read_unlock()."""
    sem = locks.mmap_lock
    if write:
        sem.writer = False
        locks.vma_write_locked.clear()
    else:
        sem.readers -= 1
    _wake(k, sem, task.t, by_writer=write)


def downgrade(k, task, locks: MmLocks) -> None:
    """mmap_write_downgrade(): the writer keeps it for read; queued readers come in."""
    sem = locks.mmap_lock
    sem.writer = False
    sem.readers += 1
    locks.vma_write_locked.clear()
    _wake(k, sem, task.t, readers_only=True)


def vma_start_write(k, task, locks: MmLocks, vma):
    """Write-lock `vma` (mmap_lock held for write): new faults in it fall back to
    mmap_read_lock(), and the faults already inside it finish first."""
    locks.vma_write_locked.add(vma.idx)
    if locks.vma_readers.get(vma.idx, 0):
        locks.vma_writer[vma.idx] = task
        yield from _sleep(k, task)


def lock_vma_or_mmap(k, task, locks: MmLocks, vma):
    """lock_vma_under_rcu(), or mmap_read_lock() when `vma` is write-locked. Returns
    what is held: True for mmap_lock (the caller looks its VMA up again)."""
    if vma.idx not in locks.vma_write_locked:
        locks.vma_readers[vma.idx] = locks.vma_readers.get(vma.idx, 0) + 1
        return False
    yield from down(k, task, locks, False)
    return True


def unlock_vma_or_mmap(k, task, locks: MmLocks, vma, mmap_held: bool) -> None:
    """vma_end_read(), waking a writer waiting for the VMA's last fault; or
    mmap_read_unlock()."""
    if mmap_held:
        up(k, task, locks, False)
        return
    n = locks.vma_readers[vma.idx] - 1
    locks.vma_readers[vma.idx] = n
    if n == 0 and vma.idx in locks.vma_writer:
        _wake_up(k, locks.vma_writer.pop(vma.idx), task.t)
