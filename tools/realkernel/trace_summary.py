"""Summarise an ftrace text trace of wis-trace.sh (stdin) for the tasks named argv[1]*:
remote flush requests by the state the other task was in (running, or switched out
with prev_state D, S, R...), flushes done in IPI handlers, and the tasks' D sleeps with
the system call or fault they slept in (from the stack traced at the switch)."""

import re
import sys
from collections import Counter

LINE = re.compile(r"\[(\d+)\]\s+\S+\s+([\d.]+): (\w+): (.*)")
SWITCH = re.compile(r"prev_comm=(\S+).*prev_state=(\S+).*next_comm=(\S+)")
WHERE = {"vm_mmap_pgoff": "mmap", "__vm_munmap": "munmap", "handle_mm_fault": "a fault"}


def main() -> None:
    name = sys.argv[1]
    state, left, sleeps, counts, where = {}, {}, [], Counter(), Counter()
    stack = None                      # where the last D sleep's stack points, once found
    for line in sys.stdin:
        if line.lstrip().startswith("=>"):
            func = line.split()[1]
            if stack == "" and func in WHERE:
                stack = WHERE[func]
                where[stack] += 1
            continue
        m = LINE.search(line)
        if not m:
            continue
        t, cpu, event, rest = float(m.group(2)), int(m.group(1)), m.group(3), m.group(4)
        if event == "sched_switch":
            prev, prev_state, nxt = SWITCH.search(rest).groups()
            if prev.startswith(name):
                state[cpu], left[cpu] = prev_state, t
                stack = "" if prev_state == "D" else None
            if nxt.startswith(name):
                if state.get(cpu) == "D":
                    sleeps.append(t - left[cpu])
                state[cpu] = "running"
        elif "remote IPI send" in rest:
            counts["requests, other task " + state.get(1 - cpu, "not seen")] += 1
        elif "remote shootdown" in rest:
            counts["flushes done in the IPI handler"] += 1
    for what, n in sorted(counts.items()):
        print(f"{n:8d}  {what}")
    print(f"{len(sleeps):8d}  D sleeps, {sum(sleeps) * 1e3:.2f} ms in all, "
          f"longest {max(sleeps, default=0) * 1e3:.3f} ms; slept in: "
          + ", ".join(f"{w} {n}" for w, n in where.most_common()))


if __name__ == "__main__":
    main()
