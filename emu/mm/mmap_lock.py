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

Waiters queue oldest first. A release hands the lock to the queue's head: a writer
alone, or, with a reader at the head, every queued reader (rwsem_mark_wake(); a
downgrade wakes readers only). A user task that has to wait sleeps
(TASK_UNINTERRUPTIBLE): its thread leaves its CPU, which goes idle and so lazy, and
flushes sent meanwhile skip it unless they free page tables (Coordinator.sleep_thread).
emu keeps the thread off its CPU until its call returns, where the kernel would run the
rest of the call on it (docs/simplifications.md).
"""

from collections import deque

from emu.engine.process import Wait


class RwSem:
    """struct rw_semaphore: how many readers hold it, whether a writer does, and the
    queue of (task, write) waiting for it, oldest first."""

    __slots__ = ("readers", "writer", "queue")

    def __init__(self):
        self.readers, self.writer, self.queue = 0, False, deque()

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
    """mmap_write_trylock() / mmap_read_trylock(): taken if free for it and nobody
    queues."""
    sem = locks.mmap_lock
    if sem.queue or not sem.free_for(write):
        return False
    sem.take(write)
    return True


def down(k, task, locks: MmLocks, write: bool):
    """mmap_write_lock() / mmap_read_lock(): at once if try_down() takes it, else
    queued."""
    if not try_down(locks, write):
        locks.mmap_lock.queue.append((task, write))
        yield from _sleep(k, task)


def _wake(k, sem: RwSem, t: int, readers_only: bool = False) -> None:
    """rwsem_mark_wake(): a writer at the head gets the lock if it is free; a reader at
    the head brings every queued reader in with it."""
    if not sem.queue:
        return
    if sem.queue[0][1]:
        if not readers_only and sem.free_for(True):
            task, _ = sem.queue.popleft()
            sem.take(True)
            k.coord.runner.notify(task, t)
        return
    if sem.writer:
        return
    kept = deque()
    for task, write in sem.queue:
        if write:
            kept.append((task, write))
        else:
            sem.take(False)
            k.coord.runner.notify(task, t)
    sem.queue = kept


def up(k, task, locks: MmLocks, write: bool) -> None:
    """mmap_write_unlock() (which ends the VMAs' write locks) / mmap_read_unlock()."""
    sem = locks.mmap_lock
    if write:
        sem.writer = False
        locks.vma_write_locked.clear()
    else:
        sem.readers -= 1
    _wake(k, sem, task.t)


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
        k.coord.runner.notify(locks.vma_writer.pop(vma.idx), task.t)
