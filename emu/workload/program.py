"""A simulated thread: its scenario steps, run as a generator of actions (SimPy style).

Actions the CPU executes:
    ("touch", vpages, kinds, work_ns, segv_skip)   page accesses through the TLB
    ("syscall", op, args)               handled by the coordinator; the thread waits
    ("sleep", ns)
    ("exit",)
"""

import numpy as np

from emu.workload.patterns import access_kinds, page_sequence

PROT_BITS = {"none": 0, "r": 1, "rw": 3, "rx": 5}


def work_units(spec: dict) -> int:
    """A thread's expected work, for progress: its tagged steps (e.g. tokens) over all
    repetitions, or its repetitions if no step is tagged; 0 for a daemon."""
    if spec["daemon"]:
        return 0
    return spec["repeat"] * (sum(1 for s in spec["steps"] if s["tag"]) or 1)


def work_unit_name(spec: dict) -> str:
    """What one work unit of the thread is: its tag (if one) or "iteration"."""
    tags = {s["tag"] for s in spec["steps"] if s["tag"]}
    return tags.pop() if len(tags) == 1 else "iteration" if not tags else "tagged step"


class Thread:
    """A thread of a process, pinned to one CPU, with a seeded random stream of its own."""

    def __init__(self, tid: int, mm: int, index: int, nthreads: int, spec: dict,
                 layout, file_ids: dict, seed: int):
        self.tid, self.mm, self.daemon = tid, mm, spec["daemon"]
        self.index, self.nthreads = index, nthreads   # position among its group's threads
        self.spec, self.layout, self.file_ids = spec, layout, file_ids
        self.rng = np.random.default_rng([seed, tid])
        self.cursors: dict[int, int] = {}
        self.program = self._actions()
        self.action = None        # current action, with progress in self.pos
        self.pos = 0
        self.state = "ready"      # ready | kernel | io | sleep | done
        self.wake_at = 0
        self.exit_ns = -1
        self.tags: dict[str, list[int]] = {}   # tag -> completion times
        self.units_done = 0       # work units (see work_units) finished, for progress

    def _vma(self, name: str):
        return self.layout.vma_by_mm_name[(self.mm, name)]

    def _touch(self, step: dict) -> tuple:
        vma = self._vma(step["mapping"])
        first, npages = vma.start, vma.pages
        if step["part"] == "thread":
            lo = npages * self.index // self.nthreads
            hi = npages * (self.index + 1) // self.nthreads
            first, npages = first + lo, max(1, hi - lo)
        count = step["pages"] or npages
        key = id(step)
        vpages, self.cursors[key] = page_sequence(step["pattern"], first, npages, count,
                                                  self.cursors.get(key, 0), self.rng,
                                                  step["zipf_a"])
        kinds = access_kinds(step["access"], count, step["write_fraction"], self.rng)
        if step["access"] != "mix" and vma.kind == "code":
            kinds = 2
        return ("touch", vpages, kinds, step["work_ns"], int(step["segv"] == "skip"))

    def _syscall(self, step: dict) -> tuple:
        op = step["op"]
        if op == "kalloc":
            return ("syscall", op, (step["pages"],))
        if op in ("write", "truncate"):
            return ("syscall", op, (self.file_ids[step["file"]], step["offset"], step["pages"]))
        vma = self._vma(step["mapping"])
        if op == "mprotect":
            return ("syscall", op, (vma.idx, PROT_BITS[step["prot"]]))
        if op == "mmap":
            return ("syscall", op, (vma.idx, int(step["fixed"])))
        if op == "madvise":
            return ("syscall", op, (vma.idx, step["advice"]))
        return ("syscall", op, (vma.idx,))

    def _actions(self):
        spec = self.spec
        forever = spec["daemon"] and spec["repeat"] == 0
        tagged = any(step["tag"] for step in spec["steps"])
        unit = int(not spec["daemon"])        # daemons' work is not counted
        n = 0
        while forever or n < spec["repeat"]:
            for step in spec["steps"]:
                op = step["op"]
                if op in ("touch", "spin"):
                    yield self._touch(step)
                elif op == "sleep":
                    yield ("sleep", step["ns"])
                else:
                    yield self._syscall(step)
                if step["tag"]:
                    yield ("tag", step["tag"])
                    self.units_done += unit
            n += 1
            self.units_done += unit * (not tagged)
        yield ("exit",)

    def next_action(self) -> tuple:
        self.action = next(self.program)
        self.pos = 0
        return self.action
