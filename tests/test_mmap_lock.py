"""mmap_lock and the per-VMA locks (emu/mm/mmap_lock.py): who gets the lock when, as
rwsem.c's queue, lock stealing and handoff and 6.13's VMA locks give it. Pure logic,
driven by a ProcessRunner; then two short runs (one rank, two CPUs): a thread asleep on
mmap_lock is lazy, so a flush skips it."""

from types import SimpleNamespace

from conftest import ipis, run_json

from emu.engine.component import INF
from emu.engine.process import Delay, ProcessRunner
from emu.mm import mmap_lock
from emu.mm.mmap_lock import RWSEM_WAIT_TIMEOUT_NS, MmLocks, wake_ns

COST = {"ipi_latency_ns": 7, "context_switch_ns": 13}
W = wake_ns(COST)                  # a sleeper runs again this long after its wake-up


class Coordinator:
    def __init__(self):
        self.runner = ProcessRunner(lambda proc, req: None)
        self.slept = []

    def sleep_thread(self, task):
        if task.tid >= 0 and not task.asleep:
            task.asleep = True
            self.slept.append(task.name)


def world():
    k = SimpleNamespace(coord=Coordinator(), cost=COST)
    return k, MmLocks(), []


def locker(k, locks, log, name, at, write, hold, tid=1):
    """A task that takes mmap_lock at `at`, holds it `hold` ns and releases it."""
    def body(task):
        yield from mmap_lock.down(k, task, locks, write)
        log.append((name, "in", task.t))
        yield Delay(hold)
        mmap_lock.up(k, task, locks, write)
        log.append((name, "out", task.t))
    k.coord.runner.spawn(body, at, 0, name, tid=tid)


def run(k):
    runner = k.coord.runner
    while runner.next_time() < INF:
        runner.step()


def entered(log):
    return {name: t for name, what, t in log if what == "in"}


def test_a_release_hands_over_to_a_writer_alone_or_to_every_queued_reader():
    k, locks, log = world()
    locker(k, locks, log, "w1", 0, True, 100)
    locker(k, locks, log, "r1", 10, False, 50)
    locker(k, locks, log, "w2", 20, True, 50)
    locker(k, locks, log, "r2", 30, False, 50)
    run(k)
    # rwsem_mark_wake(): a reader at the head brings every queued reader, past w2
    assert entered(log) == {"w1": 0, "r1": 100 + W, "r2": 100 + W, "w2": 150 + 2 * W}
    assert k.coord.slept == ["r1", "w2", "r2"]          # w1 took it at once


def test_munmap_downgrades_for_its_zap_so_readers_come_in_and_writers_wait():
    def munmap(task):
        yield from mmap_lock.down(k, task, locks, True)
        yield Delay(10)                                  # detach the VMAs
        mmap_lock.downgrade(k, task, locks)
        log.append(("munmap", "zap", task.t))
        yield Delay(100)
        mmap_lock.up(k, task, locks, False)

    k, locks, log = world()
    k.coord.runner.spawn(munmap, 0, 0, "munmap", tid=1)
    locker(k, locks, log, "madvise", 5, False, 20)
    locker(k, locks, log, "mmap", 6, True, 5)
    run(k)
    assert entered(log) == {"madvise": 10 + W, "mmap": 110 + W}

    k, locks, log = world()                             # a writer at the head: no reader
    k.coord.runner.spawn(munmap, 0, 0, "munmap", tid=1)  # passes it on the downgrade
    locker(k, locks, log, "mmap", 5, True, 5)
    locker(k, locks, log, "madvise", 6, False, 20)
    run(k)
    assert entered(log) == {"mmap": 110 + W, "madvise": 115 + 2 * W}


def test_a_writer_waits_for_the_faults_in_its_vma_and_later_faults_there_wait_for_it():
    vma_a, vma_b = SimpleNamespace(idx=0), SimpleNamespace(idx=1)

    def fault(vma, name, hold):
        def body(task):
            held = yield from mmap_lock.lock_vma_or_mmap(k, task, locks, vma)
            log.append((name, "in", task.t))
            yield Delay(hold)
            mmap_lock.unlock_vma_or_mmap(k, task, locks, vma, held)
        return body

    def mprotect(task):
        yield from mmap_lock.down(k, task, locks, True)
        yield from mmap_lock.vma_start_write(k, task, locks, vma_a)
        log.append(("mprotect", "in", task.t))
        yield Delay(30)
        mmap_lock.up(k, task, locks, True)

    k, locks, log = world()
    runner = k.coord.runner
    runner.spawn(fault(vma_a, "fault_a", 50), 0, 1, "fault_a", tid=2)
    runner.spawn(mprotect, 10, 0, "mprotect", tid=1)
    runner.spawn(fault(vma_a, "late_a", 5), 20, 1, "late_a", tid=2)
    runner.spawn(fault(vma_b, "fault_b", 5), 20, 1, "fault_b", tid=3)
    run(k)
    assert entered(log) == {"fault_a": 0, "mprotect": 50 + W, "late_a": 80 + 2 * W, "fault_b": 20}
    assert k.coord.slept == ["mprotect", "late_a"]


def test_a_kernel_thread_waiting_has_no_thread_to_put_to_sleep():
    k, locks, log = world()
    locker(k, locks, log, "w1", 0, True, 100)
    locker(k, locks, log, "kthread", 10, False, 10, tid=-1)
    run(k)
    assert entered(log)["kthread"] == 100 + W and k.coord.slept == []


def test_a_running_writer_takes_the_lock_before_the_woken_writer_runs():
    """rwsem_mark_wake() only wakes a writer at the head: until it runs, W later, the
    lock is free and a writer asking for it takes it (rwsem_optimistic_spin()). The
    woken writer, not yet waiting RWSEM_WAIT_TIMEOUT, sleeps again until the release."""
    k, locks, log = world()
    locker(k, locks, log, "zap", 0, False, 1000)        # a munmap's zap, read-held
    locker(k, locks, log, "queued", 10, True, 50)
    locker(k, locks, log, "running", 1000 + W // 2, True, 100)
    run(k)
    assert entered(log) == {"zap": 0, "running": 1000 + W // 2,
                            "queued": 1100 + W // 2 + W}
    assert not locks.mmap_lock.handoff


def test_a_writer_that_waited_past_the_timeout_sets_handoff_and_nobody_steals_then():
    """A woken writer that finds the lock taken after RWSEM_WAIT_TIMEOUT sets HANDOFF
    (rwsem_try_write_lock()): a free lock is then no longer stolen, by a writer here;
    before that a reader stole it (the reader's optimistic lock stealing)."""
    T = RWSEM_WAIT_TIMEOUT_NS + 1000
    k, locks, log = world()
    locker(k, locks, log, "zap", 0, False, T)
    locker(k, locks, log, "queued", 10, True, 50)
    locker(k, locks, log, "reader", T + 1, False, 1000)        # steals before W
    locker(k, locks, log, "behind", T + 500, True, 100)        # held by the reader
    locker(k, locks, log, "late", T + 1002, True, 100)         # free, but HANDOFF
    run(k)
    assert entered(log) == {"zap": 0, "reader": T + 1, "queued": T + 1001 + W,
                            "behind": T + 1051 + 2 * W, "late": T + 1151 + 3 * W}
    assert not locks.mmap_lock.handoff and not locks.mmap_lock.queue


def test_with_handoff_set_the_waiter_spins_on_a_writer_and_takes_it_at_its_release():
    T = RWSEM_WAIT_TIMEOUT_NS + 1000
    k, locks, log = world()
    locker(k, locks, log, "zap", 0, False, T)
    locker(k, locks, log, "queued", 10, True, 50)
    locker(k, locks, log, "running", T + 1, True, 100)         # steals, holds 100
    run(k)
    assert entered(log) == {"zap": 0, "running": T + 1, "queued": T + 101}


def test_a_waiter_spinning_on_a_writer_sleeps_when_it_downgrades_to_read():
    """rwsem_spin_on_owner() stops at a reader owner: the waiter with HANDOFF set sleeps
    and runs W after the last reader leaves."""
    T = RWSEM_WAIT_TIMEOUT_NS + 1000

    def munmap(task):                                  # steals the lock, then zaps
        yield from mmap_lock.down(k, task, locks, True)
        log.append(("munmap", "in", task.t))
        yield Delay(2 * W)                             # the waiter fails meanwhile
        mmap_lock.downgrade(k, task, locks)
        yield Delay(100)
        mmap_lock.up(k, task, locks, False)

    k, locks, log = world()
    locker(k, locks, log, "zap", 0, False, T)
    locker(k, locks, log, "queued", 10, True, 50)
    k.coord.runner.spawn(munmap, T + 1, 0, "munmap", tid=2)
    run(k)
    assert entered(log) == {"zap": 0, "munmap": T + 1, "queued": T + 101 + 3 * W}


SLEEPER = """
[scenario]
name = "sleeper"
[machine]
dram_pages = 8192
[[process]]
name = "p"
  [[process.mappings]]
  name = "big"
  pages = 4096
  prot = "rw"
  populate = true
  [[process.mappings]]
  name = "own"
  pages = 4
  prot = "rw"
  [[process.mappings]]
  name = "other"
  pages = 4
  prot = "rw"
  mapped = false
  [[process.threads]]
  cpus = [0]
  steps = [{ op = "madvise", mapping = "big", advice = "dontneed" }]
  [[process.threads]]
  cpus = [1]
  steps = [SIBLING]
"""
SPIN = '{ op = "loop", repeat = %d, steps = [{ op = "touch", mapping = "own", work_ns = 50 }] }'


def test_a_thread_asleep_on_mmap_lock_is_lazy_and_gets_no_ipi(tmp_path):
    """CPU 0 zaps 4,096 populated pages with MADV_DONTNEED, mmap_lock held for read: its
    zap (4,096 x zap_pte_ns, 1.7 ms) flushes once, at the end (the gather's batches hold
    9,698 pages; no page table is freed, which would IPI lazy CPUs too). CPU 1 runs the
    mm and, 0.1 ms in, calls mmap, which waits for that zap asleep: no IPI. Spinning on
    instead, it is sent the flush's IPI."""
    siblings = {"mmap": f'{SPIN % 170}, {{ op = "mmap", mapping = "other" }}, {SPIN % 5000}',
                "spin": SPIN % 8000}         # 600 ns a loop: 0.1 ms, then 3 ms; or 4.8 ms
    runs = {}
    for name, sibling in siblings.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(SLEEPER.replace("SIBLING", sibling))
        out = run_json(1, tmp_path, "run", "--scenario", str(path), "--cpus", "2",
                       "--policy", "vanilla")
        runs[name] = out["runs"][0]
    for run in runs.values():
        assert run["shootdowns_by_source"]["madvise"]["flushes"] == 1
    assert ipis(runs["mmap"]) == 0
    assert ipis(runs["spin"]) == 1


def test_trylock_fails_while_a_writer_holds_it_or_anyone_queues():
    k, locks, log = world()
    assert mmap_lock.try_down(locks, False)             # a NUMA scan's read lock
    locker(k, locks, log, "w1", 0, True, 10)            # queues behind it
    k.coord.runner.step()
    assert not mmap_lock.try_down(locks, False)         # a reader does not pass a writer
    mmap_lock.up(k, SimpleNamespace(t=5), locks, False)
    run(k)
    assert entered(log)["w1"] == 5 + W and mmap_lock.try_down(locks, True)
    assert not mmap_lock.try_down(locks, False)
