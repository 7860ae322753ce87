"""One policy run on every rank: build the components placed here, run, collect.

Every rank builds the same scenario, layout and thread placement from the same inputs,
so nothing but events and the coordinator's page-table log travels between ranks. The
kernel's modules and the timeline recorder are imported only where they are used (at
128 ranks on a few cores every rank's imports add up in the start-up).
"""

from __future__ import annotations

import resource
import time
from typing import TYPE_CHECKING

import numpy as np

from emu import protocol as P
from emu.cpu.cpu import Cpu
from emu.engine.collect import allgather_flag, gather_to_root
from emu.engine.engine import Engine
from emu.engine.sync import WindowSync, stop_on_signal
from emu.mm.layout import build_layout
from emu.mm.replica import Replica
from emu.progress import Progress
from emu.results import assemble_run
from emu.timeline import Timeline
from emu.workload.program import Thread, work_unit_name, work_units

if TYPE_CHECKING:
    from emu.checkpoint import Plan
    from emu.trace import Recorder, TraceOptions


class Stopped(Exception):
    """The run saved a checkpoint after a stop signal and stops (exit status 0)."""


class InjectedFailure(RuntimeError):
    """Raised by the hidden --debug-fail-rank option to prove a job aborts cleanly."""


def place_threads(sc: dict, layout, ncpus: int) -> list[tuple]:
    """(tid, mm, index in group, group size, spec, cpu) for every thread, deterministically:
    each thread goes to the least loaded of its allowed CPUs (lowest number on ties)."""
    load = [0] * ncpus
    out, tid = [], 0
    for mm, proc in enumerate(sc["process"]):
        for spec in proc["threads"]:
            allowed = [c for c in spec["cpus"] if c < ncpus] or \
                list(range(min(spec["cpus_from"], ncpus - 1), ncpus))
            count = spec["count"] or len(allowed)
            for i in range(count):
                cpu = allowed[i] if not spec["count"] else min(allowed, key=lambda c: (load[c], c))
                load[cpu] += 1
                out.append((tid, mm, i, count, spec, cpu))
                tid += 1
    return out


def run_policy(MPI, comm, sync: WindowSync, sc: dict, policy: str, ncpus: int,
               placement: list[int], debug_fail_rank: int = -1, progress: bool = False,
               trace: TraceOptions | None = None, trace_file=None,
               started_s: float | None = None, plan: Plan | None = None,
               resume: dict | None = None) -> dict | None:
    """Run `policy` on the scenario across all ranks, on the job's `sync` (a WindowSync
    for `placement`'s components); rank 0 returns the run's results
    (and shows progress on stderr if `progress`, and writes the run's part of the
    timeline to `trace_file` if `trace` is given). Start-up is measured from `started_s`
    (time.perf_counter(); default: this call) to the first window. With a `plan`, save
    checkpoints (emu/checkpoint.py); with `resume` (rank 0: the checkpoint; the others:
    an empty dict), continue from one. Raises Stopped on every rank if the run stopped
    after a checkpoint (SIGTERM or SIGUSR1). The checkpoint modules are imported only
    then (every rank's imports add up in the start-up)."""
    t0 = time.perf_counter()
    rank = comm.Get_rank()
    layout = build_layout(sc)
    file_ids = {f["name"]: i for i, f in enumerate(sc["file"])}
    seed = sc["scenario"]["seed"]
    placed = place_threads(sc, layout, ncpus)
    coord_cid = ncpus
    engine = Engine(MPI, comm, sync, placement, sc["scenario"]["quantum_ns"],
                    P.MEASURED_KINDS, paced=frozenset({coord_cid}))
    busy = {cpu for *_, cpu in placed}
    dormant = {r for r in range(comm.Get_size()) if r != placement[ncpus]
               and not any(placement[c] == r for c in busy)}
    engine.set_dormant_ranks(dormant)
    engine.sync.republish = Cpu.republish    # the leader's stand-in for sleeping CPUs
    # only CPUs with threads walk page tables, and only those of their threads' mms
    mine = {mm for _, mm, *_, cpu in placed if placement[cpu] == rank}
    replica = None
    if mine:
        replica = Replica(layout, len(layout.mm_names), mms=mine)
        engine.blob_sinks.append(replica.apply)
    cpus = []
    for c in range(ncpus):
        if placement[c] != rank:
            continue
        threads = [Thread(tid, mm, i, n, spec, layout, file_ids, seed)
                   for tid, mm, i, n, spec, cpu in placed if cpu == c]
        cpus.append(Cpu(c, coord_cid, ncpus, sc, replica, threads,
                        track_frames=policy == "ideal"))
        engine.add(cpus[-1])
    coord = timeline = shown = None
    hooks = []
    if placement[coord_cid] == rank:
        from emu.coordinator import Coordinator

        by_mm = [[(tid, cpu, spec["daemon"]) for tid, m, _, _, spec, cpu in placed if m == mm]
                 for mm in range(len(layout.mm_names))]
        coord = Coordinator(coord_cid, ncpus, sc, layout, policy, by_mm)
        engine.blob_source = coord.k.R.take_log
        engine.add(coord)
        timeline = Timeline(coord.k, engine.quantum)
        hooks.append(timeline.sample)
    if progress and rank == 0:
        mine = [spec for *_, spec, _ in placed if work_units(spec)]
        units = {work_unit_name(spec) for spec in mine}
        shown = Progress(policy, engine, ncpus, sum(work_units(spec) for spec in mine),
                         units.pop() if len(units) == 1 else "work unit")
        hooks.append(shown)
    first_window: list[float] = []
    hooks.append(_first_window(first_window))
    rec = None
    if trace is not None:
        from emu.trace import Recorder

        rec = Recorder(trace, comm.Get_size() - len(dormant), sc["cost"],
                       timeline.state if timeline else None)
        for c in [*cpus, coord]:
            if c is not None:
                c.trace = rec
        hooks.append(rec.window_start)
    if debug_fail_rank == rank:
        hooks.append(_fail_after(3, rank))
    engine.on_window = _chain(hooks)
    # what a saved CPU refers to but does not own: saved by name, resolved on loading
    shared = {"engine": engine, "replica": replica, "layout": layout, "sc": sc}
    if replica is not None:
        shared["replica_arrays"] = replica.arrays     # its lists, should a CPU hold one
    start = None
    if resume is not None:
        start = _resume(MPI, comm, engine, resume, placement, cpus, shared, coord, timeline)
    if plan is not None:
        _plan_checkpoints(MPI, comm, engine, plan, cpus, shared, coord)
    else:
        engine.journal = None
    end = engine.run(sc["scenario"]["duration_ns"], start)
    if engine.stopped:
        engine.close()
        raise Stopped(end)
    if shown:
        shown.finish()
    if rec:
        rec.finish(cpus)
        rec.ipi_counter()
    wall = time.perf_counter() - t0
    local = {
        "rank": rank,
        "cpus": {c.cid: _cpu_result(c) for c in cpus},
        "coordinator": _coord_result(coord, timeline, end) if coord else None,
        "engine": dict(engine.stats),
        "latencies_us": [x * 1e6 for x in engine.latencies_s],
        "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "wall_s": wall,
        "startup_s": first_window[0] - (t0 if started_s is None else started_s)
        if first_window else None,                  # dormant ranks run no window
        "end_ns": end,
    }
    engine.close()
    if rec:
        _write_trace(MPI, comm, rec, end, trace_file, policy, sc["scenario"]["name"])
    parts = gather_to_root(MPI, comm, local)
    if rank != 0:
        return None
    return assemble_run(sc, policy, ncpus, comm.Get_size(), parts, layout)


def _plan_checkpoints(MPI, comm, engine: Engine, plan: Plan, cpus: list,
                      shared: dict, coord) -> None:
    """Save a checkpoint at the boundaries the leaders choose: the coordinator's inputs
    are journaled from the start (it is rebuilt by replaying them). Every rank that runs
    windows saves: all but the dormant ones, which only their node knows (a node's
    leader runs windows even without work), hence one exchange of the flags."""
    from emu import checkpoint
    from emu.engine.journal import Journal

    takers = np.flatnonzero(allgather_flag(MPI, comm, not engine.dormant)).tolist()
    engine.sync.checkpointing = True
    engine.sync.checkpoint_every = plan.every_ns
    engine.sync.checkpoint_next = max(engine.sync.checkpoint_next, plan.every_ns)
    stop_on_signal(engine.sync)
    if coord is not None and engine.journal is None:
        engine.journal = Journal({coord.cid})

    def save(epoch: int, start: int) -> None:
        boundary = None
        if coord is not None:
            boundary = {"epoch": epoch, "start": start, "horizon": engine.horizon,
                        "paced_min": engine.paced_min,
                        "checkpoint_next": engine.sync.checkpoint_next,
                        "pub": engine.pub.copy(), "replica": coord.k.R.arrays,
                        "journal": engine.journal.state()}
        checkpoint.save(MPI, comm, plan, cpus, shared, takers, boundary, engine.sync.live.check)
    engine.on_checkpoint = save


def _resume(MPI, comm, engine: Engine, doc: dict, placement: list[int], cpus: list,
            shared: dict, coord, timeline) -> dict:
    """Restore this rank's part of a checkpoint; return the boundary to start after."""
    from emu import checkpoint
    from emu.engine import snapshot
    from emu.engine.journal import Journal, replay

    common, states = checkpoint.distribute(MPI, comm, doc or None, placement)
    for c in cpus:
        if c.cid in states:
            snapshot.restore(c, states[c.cid], shared)
    if shared["replica"] is not None:
        shared["replica"].load(common["replica"])
    if coord is not None:
        engine.journal = Journal.restored({coord.cid}, doc["boundary"]["journal"])
        replay([coord], engine.journal, engine.quantum, hooks=[timeline.sample],
               after=[coord.k.R.take_log])
        coord.engine = engine
    engine.sync.checkpoint_next = common["checkpoint_next"]
    return common


def _write_trace(MPI, comm, rec: Recorder, end: int, trace_file, policy: str,
                 scenario: str) -> None:
    """Every rank's part of the run's timeline to rank 0's file, as one process."""
    from emu.trace import gather_trace

    if trace_file:
        trace_file.begin_run(rec.pid, policy, scenario)
    cut, end = gather_trace(MPI, comm, rec, end, trace_file.write if trace_file else None)
    if trace_file:
        trace_file.end_run(rec.pid, policy, cut, end)


def _chain(hooks: list):
    """One on_window hook calling `hooks` in order (None if there are none)."""
    if len(hooks) <= 1:
        return hooks[0] if hooks else None

    def chained(start: int) -> None:
        for hook in hooks:
            hook(start)
    return chained


def _first_window(stamps: list[float]):
    """A hook noting the wall time of the first window in `stamps`."""
    def hook(_start):
        if not stamps:
            stamps.append(time.perf_counter())
    return hook


def _fail_after(windows: int, rank: int):
    state = {"n": 0}

    def hook(_start):
        state["n"] += 1
        if state["n"] >= windows:
            raise InjectedFailure(f"injected failure on rank {rank} (--debug-fail-rank)")
    return hook


def _cpu_result(c) -> dict:
    threads = {}
    for th in c.threads.values():
        threads[th.tid] = {"mm": th.mm, "daemon": th.daemon, "exit_ns": th.exit_ns,
                           "tags": th.tags, "iterations": th.iterations}
    return {"stats": c.stats, "oracle": {"checked": c.oracle.checked,
                                         "violations": c.oracle.violations,
                                         "by_kind": c.oracle.by_kind,
                                         "first": c.oracle.first},
            "threads": threads}


def _coord_result(coord, timeline: Timeline, end: int) -> dict:
    k = coord.k
    return {"vmstat": k.vmstat, "initiator": coord.initiator_stats,
            "latency_ns": coord.latency.by_source, "user_wait_ns": coord.latency.user_wait_ns,
            "flushes_by_source": k.shootdown_sources, "ipis_by_source": k.ipis_by_source,
            "policy": k.policy.stats, "unmap_ro_rw": k.unmap_ro_rw, "mm_exit_ns": coord.mm_exit_ns,
            "watermarks": k.alloc.watermarks, "timeline": timeline.result(end),
            "inputs_late": coord.inputs_late}
