"""Summarise an ftrace text trace of wis-trace.sh (stdin) for the tasks named argv[1]*:
remote flush requests by the state the other CPU's worker task was in (running, or
switched out with prev_state D, S, R...), flushes done in IPI handlers, the tasks' D
sleeps with the system call or fault they slept in (from the stack traced at the
switch), and how long their munmaps of the whole mapping took, apart for those during
which the task was switched out (a lock wait, a preemption): the others time the zap
alone, what emu's zap_pte_ns and free_page_ns come from. A worker is the task
that made the last flush request on its CPU (the driver's own thread has the same name
but makes none).

Lock stealing (rwsem.c, emu/mm/mmap_lock.py): after a munmap that returns while the
other task sleeps in D, the releasing task's next mmap() needs mmap_lock for write, as
does the sleeper, queued for it. If that mmap() returns without sleeping in D, the
releaser took the lock first (had the sleeper taken it, the mmap() would wait out the
sleeper's whole munmap); the woken sleeper may well have run meanwhile, found the lock
taken and spun with HANDOFF set."""

import re
import statistics
import sys
from collections import Counter

LINE = re.compile(r"^\s*(\S+)-(\d+)\s+\[(\d+)\]\s+\S+\s+([\d.]+): (\w+): (.*)")
SWITCH = re.compile(r"prev_comm=(\S+) prev_pid=(\d+).*prev_state=(\S+) ==> "
                    r"next_comm=(\S+) next_pid=(\d+)")
MUNMAP = re.compile(r"^\s*(\S+)-(\d+)\s+\[\d+\]\s+\S+\s+([\d.]+): sys_munmap(\(| ->)")
MMAP_EXIT = re.compile(r"^\s*(\S+)-(\d+)\s+\[\d+\]\s+\S+\s+([\d.]+): sys_mmap ->")
BIG = 1 << 20                     # bytes: a munmap of the test's mapping, not of a stack
WHERE = {"vm_mmap_pgoff": "mmap", "__vm_munmap": "munmap", "handle_mm_fault": "a fault"}


def main() -> None:
    name = sys.argv[1]
    state, left, worker = {}, {}, {}
    sleeps, counts, where = [], Counter(), Counter()
    entered, munmaps, switched = {}, {True: [], False: []}, set()
    stack = None                      # where the last D sleep's stack points, once found
    after_release = {}                # releaser pid -> whether it has slept in D since
    for line in sys.stdin:
        if line.lstrip().startswith("=>"):
            func = line.split()[1]
            if stack == "" and func in WHERE:
                stack = WHERE[func]
                where[stack] += 1
            continue
        u = MUNMAP.search(line)
        if u and u.group(1).startswith(name):
            if u.group(4) == "(":
                if int(line.split("len: ")[1].rstrip(")\n"), 16) >= BIG:
                    entered[u.group(2)] = float(u.group(3))
            elif u.group(2) in entered:
                munmaps[u.group(2) in switched].append(float(u.group(3)) - entered.pop(u.group(2)))
                switched.discard(u.group(2))
                if any(s == "D" for p, s in state.items() if p != u.group(2)):
                    after_release[u.group(2)] = False
            continue
        x = MMAP_EXIT.search(line)
        if x and x.group(2) in after_release:
            first = "sleeper" if after_release.pop(x.group(2)) else "releaser"
            counts[f"munmaps the other task slept behind: mmap_lock next to the {first}"] += 1
            continue
        m = LINE.search(line)
        if not m:
            continue
        comm, pid, cpu, t, event, rest = m.groups()
        cpu, t = int(cpu), float(t)
        for running in (pid,) + ((SWITCH.search(rest).group(5),)
                                 if event == "sched_switch" else ()):
            if state.get(running, "running") != "running":  # on a CPU again (its switch
                if state[running] == "D":                     # in is not always traced)
                    sleeps.append(t - left[running])
                state[running] = "running"
        if event == "sched_switch":
            prev, prev_pid, prev_state = SWITCH.search(rest).group(1, 2, 3)
            if prev.startswith(name):
                state[prev_pid], left[prev_pid] = prev_state, t
                if prev_state == "D" and prev_pid in after_release:
                    after_release[prev_pid] = True
                if prev_pid in entered:
                    switched.add(prev_pid)
                stack = "" if prev_state == "D" else None
        elif "remote IPI send" in rest and comm.startswith(name):
            worker[cpu] = pid
            other = worker.get(1 - cpu)
            counts["requests, other task " + state.get(other, "running")] += 1
        elif "remote shootdown" in rest:
            counts["flushes done in the IPI handler"] += 1
    for what, n in sorted(counts.items()):
        print(f"{n:8d}  {what}")
    print(f"{len(sleeps):8d}  D sleeps, {sum(sleeps) * 1e3:.2f} ms in all, "
          f"longest {max(sleeps, default=0) * 1e3:.3f} ms; slept in: "
          + ", ".join(f"{w} {n}" for w, n in where.most_common()))
    for out, times in ((True, munmaps[True]), (False, munmaps[False])):
        if times:
            median = statistics.median(times)
            print(f"{len(times):8d}  munmaps of at least {BIG >> 20} MiB "
                  f"{'with' if out else 'with no'} switch-out, "
                  f"{min(times) * 1e3:.3f} to {max(times) * 1e3:.3f} ms, "
                  f"median {median * 1e3:.3f} ms ({median * 1e9 / 32768:.1f} ns a page of "
                  "will-it-scale's 32,768)")

if __name__ == "__main__":
    main()
