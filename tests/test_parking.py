"""Ranks sleep through windows in which they have no work (engine/sync.py): which ranks
run, how a sleeping rank catches up on the page-table log, and that sleeping changes no
result (whatever the placement, one node or several)."""

import numpy as np
from conftest import run_json

from emu.engine.sync import ranks_to_run
from emu.mm.layout import build_layout
from emu.mm.replica import CHANGES, FRAME_GEN, GEN_BITS, MM_GEN, MM_GEN_AT, PTE, VCID, MasterReplica, Replica
from emu.results import simulated_view
from emu.scenario.load import load_scenario

ACTIVE = np.array([True, True, True, True, False])     # rank 4 is dormant


def test_a_rank_runs_for_a_message_or_work_before_the_window_end():
    incoming = np.array([0, 2, 0, 0, 0])
    wake = np.array([50, 900, 999, 1000, 0])
    run = ranks_to_run(ACTIVE, incoming, wake, window_end=1000, ending=False,
                       behind=np.zeros(5, bool))
    # leader always; rank 1 has messages; rank 2 must act at 999 < 1000; rank 3 only at
    # the window's end, so it sleeps; a dormant rank never runs, whatever its row says
    assert run.tolist() == [True, True, True, False, False]


def test_every_active_rank_runs_at_the_end_or_when_falling_behind_the_ring():
    none = np.zeros(5, np.int64)
    late = np.full(5, 10**9)
    ending = ranks_to_run(ACTIVE, none, late, window_end=1000, ending=True,
                          behind=np.zeros(5, bool))
    assert ending.tolist() == [True, True, True, True, False]
    behind = ranks_to_run(ACTIVE, none, late, window_end=1000, ending=False,
                          behind=np.array([False, False, True, False, True]))
    assert behind.tolist() == [True, False, True, False, False]


def test_catching_up_on_many_windows_of_log_equals_applying_each_in_turn():
    layout = build_layout(load_scenario("munmap-storm"))
    master = MasterReplica(layout, 1)
    one_by_one, caught_up = Replica(layout, 1), Replica(layout, 1)
    rng = np.random.default_rng(7)
    logs = []
    for w in range(60):          # 60 windows, 6,060 rows (past APPLY_CHUNK), rewritten often
        for j in range(50):      # the kernel's time runs up to 150 ns past the window's start
            master.now = w * 100 + 3 * j
            vp = int(rng.integers(0, 8))
            master.set(PTE, vp, int(rng.integers(-1, 1000)))
            master.set(FRAME_GEN, vp, master.frame_gen[vp] + 1)
        master.set(MM_GEN, 0, master.mm_gen[0] + 1)
        master.set(MM_GEN_AT, 0, w << GEN_BITS | master.mm_gen[0])
        logs.append(master.take_log())
    for w, log in enumerate(logs):
        one_by_one.apply(log, w * 100)
    start = (len(logs) - 1) * 100
    caught_up.apply(b"".join(logs), start)
    assert caught_up.arrays[:CHANGES] == one_by_one.arrays[:CHANGES] == master.arrays[:CHANGES]
    assert master.mm_gen[0] == 61 and max(master.frame_gen[:8]) > 1
    assert [caught_up.mm_gen_at.gen_at(0, t, 61) for t in (59, 30, 0, -1)] == [61, 32, 2, 1]
    for t in range(start, start + 160, 3):      # a walk sees each PTE as at its clock
        assert [caught_up.at(PTE, vp, t) for vp in range(8)] == \
            [one_by_one.at(PTE, vp, t) for vp in range(8)] == \
            [master.at(PTE, vp, t) for vp in range(8)]


def test_a_walk_sees_a_page_table_entry_as_it_was_at_its_clock():
    """The kernel runs up to the CPUs' lookahead past a CPU's clock (engine.py): an entry
    it changed later than a walk's time is read as it was then, until no clock can be
    earlier than the change (the next window's start is past it)."""
    layout = build_layout(load_scenario("munmap-storm"))
    master, replica = MasterReplica(layout, 1), Replica(layout, 1)
    master.now = 100
    master.set(PTE, 3, 40)
    replica.apply(master.take_log(), 50)
    master.now = 230
    master.set(PTE, 3, -1)
    master.now = 260
    master.set(PTE, 3, 44)
    replica.apply(master.take_log(), 200)
    assert [replica.at(PTE, 3, t) for t in (200, 229, 230, 259, 260, 400)] == \
        [40, 40, -1, -1, 44, 44]
    replica.apply(b"", 260)
    assert replica.at(PTE, 3, 200) == 44 and replica.changes.by_vpage == {}


def test_a_replica_follows_only_its_own_mms_entries_and_every_frame():
    """A rank applies the log's common section (frames, contents) and its own mms'
    sections (their PTEs, VCIDs and tlb_gen), one window at a time or caught up: those
    entries equal the master's, and the other mms' are never touched."""
    layout = build_layout(load_scenario("llama-tiering"))
    master = MasterReplica(layout, 3)
    fresh = Replica(layout, 3)
    one_by_one, caught_up = Replica(layout, 3, mms={1}), Replica(layout, 3, mms={1})
    rng = np.random.default_rng(11)
    own = range(layout.mm_base[1], layout.mm_base[1] + layout.mm_pages[1])
    others = [v for v in range(layout.nr_vpages) if v not in own]
    logs = []
    for w in range(40):
        for j in range(60):
            master.now = w * 100 + 2 * j
            vp = int(rng.integers(0, layout.nr_vpages))
            master.set(PTE if j % 2 else VCID, vp, int(rng.integers(-1, 1000)))
            master.set(FRAME_GEN, j, master.frame_gen[j] + 1)
            mm = int(rng.integers(0, 3))
            master.set(MM_GEN, mm, master.mm_gen[mm] + 1)
        logs.append(master.take_log())
    for w, log in enumerate(logs):
        one_by_one.apply(log, w * 100)
    caught_up.apply(b"".join(logs), (len(logs) - 1) * 100)
    for r in (one_by_one, caught_up):
        assert [r.pte[v] for v in own] == [master.pte[v] for v in own]
        assert [r.vcid[v] for v in own] == [master.vcid[v] for v in own]
        assert r.frame_gen == master.frame_gen and r.mm_gen[1] == master.mm_gen[1]
        assert [r.pte[v] for v in others] == [fresh.pte[v] for v in others]
        assert r.mm_gen[0] == r.mm_gen[2] == 1
    assert master.mm_gen[0] > 1 and any(master.pte[v] != fresh.pte[v] for v in own)


# The first 3 ms: model loading (I/O waits, so ranks sleep), reclaim and demotion.
SMALL_LLAMA = ["run", "--scenario", "llama-tiering", "--cpus", "64",
               "--set=scenario.duration_ns=3000000"] + \
    [f"--set=process.{i}.threads.0.{key}" for i in range(3) for key in ("repeat=1", "count=4")]


def test_sleeping_ranks_do_not_change_results(tmp_path):
    """At -n 2 one rank holds every CPU and rarely sleeps; at -n 8 CPUs with no thread
    live on dormant ranks, and the others sleep through the windows in which their
    CPUs wait for I/O; on two fake nodes the second node's leader carries the log too.
    The results must not notice."""
    two = run_json(2, tmp_path, *SMALL_LLAMA)["runs"][0]
    eight = run_json(8, tmp_path, *SMALL_LLAMA)["runs"][0]
    nodes = run_json(8, tmp_path, *SMALL_LLAMA, env={"EMU_RANKS_PER_NODE": "4"})["runs"][0]
    assert simulated_view(two) == simulated_view(eight) == simulated_view(nodes)
    assert sum(two["per_cpu"]["tlb_shootdowns"]) > 0 and two["vmstat"]["pgdemote_kswapd"] > 0
    for run in (eight, nodes):      # ranks with threads did sleep through windows
        assert run["measured"]["rank_windows"]["min"] < run["measured"]["windows"]
