"""Ranges, cursors, loops and counters of the scenario language; tasks in threads or
processes mode; the mmu_gather's flush count; the hot working set. Pure unit tests,
except one short MPI run per will-it-scale scenario for its exact iteration count."""

import types

import numpy as np
import pytest
from conftest import run_json
from test_mm_units import StandInCoordinator, Task, drive

from emu.cpu.cpu import Cpu
from emu.engine.component import INF
from emu.errors import EmuError
from emu.mm import madvise, memory, mmap
from emu.mm.kernel import Kernel
from emu.mm.layout import build_layout
from emu.mm.mmu_gather import MAX_GATHER_BATCH, MAX_GATHER_BATCH_COUNT, MMU_GATHER_BUNDLE
from emu.mm.replica import Replica, make_pte
from emu.mm.tlb import switch_mm_irqs_off
from emu.policy.vanilla import VanillaPolicy
from emu.runner import place_threads
from emu.scenario.load import load_scenario
from emu.workload.patterns import WRITE
from emu.workload.program import Thread

BASE = """
[scenario]
name = "t"
[machine]
dram_pages = 40000
[[file]]
name = "f"
pages = 2048
[[process]]
name = "p"
tasks = {tasks}
mode = "{mode}"
  [[process.mappings]]
  name = "m"
  pages = {pages}
  mapped = false
  {mapextra}
  [[process.threads]]
  repeat = {repeat}
  iterations = {iterations}
  {hot}
  steps = [{steps}]
"""


def scenario(tmp_path, tasks=1, mode="threads", pages=64, repeat=1, iterations=0, steps="",
             mapextra="", hot="", overrides=()):
    path = tmp_path / "s.toml"
    path.write_text(BASE.format(tasks=tasks, mode=mode, pages=pages, repeat=repeat,
                                iterations=iterations, steps=steps, mapextra=mapextra,
                                hot=hot))
    return load_scenario(str(path), list(overrides))


def actions(sc, index=0):
    """The actions of the scenario's thread `index` (until exit), with its Thread."""
    layout = build_layout(sc)
    placed = place_threads(sc, layout, 8)
    tid, mm, i, n, spec, _ = placed[index]
    th = Thread(tid, mm, i, n, spec, layout, {f["name"]: j for j, f in enumerate(sc["file"])}, 1)
    out = []
    while True:
        a = th.next_action()
        out.append(a)
        if a[0] == "exit":
            return out, th


def test_cursor_walks_a_mapping_page_by_page_and_wraps(tmp_path):
    sc = scenario(tmp_path, pages=4, repeat=6, steps="""
        { op = "madvise", mapping = "m", pages = 1, cursor = true },
        { op = "mprotect", mapping = "m", prot = "r", offset = 1, pages = 3 }""")
    acts, _ = actions(sc)
    madv = [a[2] for a in acts if a[0] == "syscall" and a[1] == "madvise"]
    prot = [a[2] for a in acts if a[0] == "syscall" and a[1] == "mprotect"]
    assert [(first, n) for _, _, first, n in madv] == [(0, 1), (1, 1), (2, 1), (3, 1), (0, 1),
                                                       (1, 1)]
    assert {(first, n) for _, _, first, n in prot} == {(1, 3)}


def test_loop_and_count_stop_at_the_iteration_limit(tmp_path):
    sc = scenario(tmp_path, pages=8, repeat=0, iterations=13, steps="""
        { op = "mmap", mapping = "m" },
        { op = "loop", repeat = 8, steps = [
            { op = "touch", mapping = "m", pages = 1, access = "write" },
            { op = "count" } ] },
        { op = "munmap", mapping = "m" }""")
    acts, th = actions(sc)
    assert th.iterations == 13
    touches = [a[1][0] for a in acts if a[0] == "touch"]
    first = build_layout(sc).vmas[0].start
    assert touches == [first + i % 8 for i in range(13)]      # the touch cursor wraps
    assert [a[1] for a in acts if a[0] == "syscall"] == ["mmap", "munmap", "mmap"]


@pytest.mark.parametrize("step, key, words", [
    ('{ op = "munmap", mapping = "m", offset = 64 }', "offset", "outside mapping"),
    ('{ op = "madvise", mapping = "m", offset = 60, pages = 5 }', "pages", "exceeds mapping"),
    ('{ op = "munmap", mapping = "m", pages = 3, cursor = true }', "pages", "dividing"),
    ('{ op = "sleep", ns = 1, cursor = true }', "cursor", "cursor applies"),
    ('{ op = "loop", repeat = 0, steps = [{ op = "count" }] }', "repeat", "at least once"),
])
def test_bad_ranges_name_file_and_key(tmp_path, step, key, words):
    with pytest.raises(EmuError) as err:
        scenario(tmp_path, steps=step)
    msg = str(err.value)
    assert "s.toml" in msg and f".steps.0.{key}'" in msg and words in msg
    assert "\n" not in msg


def test_threads_and_processes_modes(tmp_path):
    steps = '{ op = "touch", mapping = "m" }'
    extra = 'kind = "file"\n  file = "f"'
    th = scenario(tmp_path, tasks=3, mode="threads", steps=steps, mapextra=extra)
    pr = scenario(tmp_path, tasks=3, mode="processes", steps=steps, mapextra=extra)
    for sc, nprocs in ((th, 1), (pr, 3)):
        layout = build_layout(sc)
        placed = place_threads(sc, layout, 4)
        assert len(layout.mm_names) == nprocs
        assert [cpu for *_, cpu in placed] == [0, 1, 2]          # one CPU each
        vmas = {(v.mm, v.name): v for v in layout.vmas}
        assert len(vmas) == 3 and len({v.start for v in vmas.values()}) == 3
        assert len({v.file for v in vmas.values()}) == 3         # a file per task
    assert sorted({mm for _, mm, *_ in place_threads(th, build_layout(th), 4)}) == [0]
    assert sorted({mm for _, mm, *_ in place_threads(pr, build_layout(pr), 4)}) == [0, 1, 2]


# -- mmu_gather --------------------------------------------------------------------------
def kernel_for(sc):
    k = Kernel(sc, build_layout(sc), 4, StandInCoordinator(4))
    k.policy = VanillaPolicy(k)
    return k


def flushes(k, body) -> int:
    before = k.R.mm_gen[0]
    drive(body)
    return k.R.mm_gen[0] - before


def test_munmap_flushes_when_the_gather_batches_fill(tmp_path):
    per_flush = MMU_GATHER_BUNDLE + MAX_GATHER_BATCH_COUNT * MAX_GATHER_BATCH
    pages = 2 * per_flush + 100
    sc = scenario(tmp_path, pages=pages, steps='{ op = "count" }')
    k = kernel_for(sc)
    vma = k.layout.vmas[0]
    drive(mmap.do_mmap(k, Task(), vma, False))
    assert flushes(k, mmap.do_munmap(k, Task(), vma)) == 0     # nothing mapped: no flush
    drive(mmap.do_mmap(k, Task(), vma, False))
    for vp in range(vma.start, vma.start + pages):
        drive(memory.handle_mm_fault(k, Task(), vp, WRITE))
    assert flushes(k, mmap.do_munmap(k, Task(), vma)) == 3     # 2 full batches + the end
    assert not k.pte_tables


def test_dirty_shared_file_pages_flush_per_page_table(tmp_path):
    sc = scenario(tmp_path, pages=2048, steps='{ op = "count" }',
                  mapextra='kind = "file"\n  file = "f"\n  shared = true')
    k = kernel_for(sc)
    vma = k.layout.vmas[0]
    drive(mmap.do_mmap(k, Task(), vma, False))
    for vp in range(vma.start, vma.start + 2048):
        drive(memory.handle_mm_fault(k, Task(), vp, WRITE))
    tables = len(k.pte_tables)
    assert tables in (4, 5)
    assert flushes(k, madvise.madvise_dontneed(k, Task(), vma, 0, 1)) == 1
    assert flushes(k, mmap.do_munmap(k, Task(), vma, 1, 2047)) == tables + 1


def test_two_faults_on_one_page_map_it_once(tmp_path):
    """The second fault waits for the first (the PTE lock) and then finds its PTE: one
    frame, mapped once; without the wait both would map a frame of their own."""
    sc = scenario(tmp_path, pages=4, steps='{ op = "count" }')
    k = kernel_for(sc)
    vma = k.layout.vmas[0]
    drive(mmap.do_mmap(k, Task(), vma, False))
    runner, done = k.coord.runner, {}

    def fault(task):
        yield from memory.do_user_addr_fault(k, task, vma.start, WRITE)
        done[task.name] = task.t
    for name, at in (("first", 0), ("second", 10)):
        runner.spawn(fault, at, int(at > 0), name, tid=at)
    while runner.next_time() < INF:
        runner.step()
    pfn = k.R.pte[vma.start] >> 2
    assert k.folios[pfn].mapcount == [vma.start]
    assert k.vmstat["pgalloc"] == 1 and k.vmstat["pgfault"] == 2
    assert done["second"] == done["first"] > 10


# -- hot working set ---------------------------------------------------------------------
HOT = ('hot = [{ mapping = "m", pages = 5, access = "write" }, '
       '{ mapping = "m", offset = 8, pages = 3, access = "exec" }]')


def hot_cpu(tmp_path):
    sc = scenario(tmp_path, pages=64, steps='{ op = "touch", mapping = "m", offset = 20, pages = 4 }',
                  hot=HOT, overrides=["process.0.mappings.0.mapped=true"])
    layout = build_layout(sc)
    replica = Replica(layout, 1)
    for vp in range(layout.nr_vpages):
        replica.pte[vp] = make_pte(vp, True)
    tid, mm, i, n, spec, _ = place_threads(sc, layout, 1)[0]
    th = Thread(tid, mm, i, n, spec, layout, {}, 1)
    cpu = Cpu(0, 1, 1, sc, replica, [th])
    cpu.engine = types.SimpleNamespace(epoch=0, pub=np.zeros((2, 8), np.int64))
    switch_mm_irqs_off(cpu, 0)
    act = ("touch", [layout.vmas[0].start + 20 + i for i in range(4)], 0, 0, 0)
    return cpu, th, act


def step(cpu, th, act):
    th.pos = 0
    assert cpu._touch(th, act, 10**12)


@pytest.mark.parametrize("nflush", [0, 1, 3, 7])
def test_hot_set_refills_are_hot_pages_times_full_flushes(tmp_path, nflush):
    cpu, th, act = hot_cpu(tmp_path)
    step(cpu, th, act)
    st = cpu.stats
    assert st["miss_first_touch"] == 8 + 4 and st["miss_hot_refill"] == 0
    for _ in range(nflush):
        for _ in range(5):
            step(cpu, th, act)                 # between flushes: hot pages cost nothing
        cpu.flush_slot(cpu.loaded_slot)
    step(cpu, th, act)
    assert st["miss_hot_refill"] == 8 * nflush
    assert st["miss_flush_refill"] == 4 * nflush          # the step's own pages, after a flush
    assert st["itlb_load_misses"] == 3 * (1 + nflush)
    assert st["dtlb_store_misses"] == 5 * (1 + nflush)


def test_invlpg_of_one_hot_page_refills_only_that_page(tmp_path):
    cpu, th, act = hot_cpu(tmp_path)
    step(cpu, th, act)
    cpu.invlpg_range(th.hot[1][0], 1)
    step(cpu, th, act)
    assert cpu.stats["miss_hot_refill"] == 1


# -- the will-it-scale suite, run ----------------------------------------------------------
WIS = ["tlb_flush1", "tlb_flush2", "tlb_flush3", "page_fault1", "page_fault2", "page_fault3",
       "mmap1", "mmap2"]


@pytest.mark.parametrize("name", WIS)
def test_wis_scenario_counts_exactly(tmp_path, name):
    mode = "threads" if WIS.index(name) % 2 else "processes"
    doc = run_json(2, tmp_path, "run", "--policy", "vanilla", "--scenario", f"wis-{name}",
                   "--set", f"vars.mode={mode}", "--set", "vars.iterations=3", timeout=120)
    run = doc["runs"][0]
    assert run["iterations"] == 2 * 3
    assert run["oracle"]["violations"] == 0
    assert len(run["processes"]) == (1 if mode == "threads" else 2)
