"""A simulated thread: its scenario steps, interpreted one action at a time.

Actions the CPU executes:
    ("touch", vpages, kinds, work_ns, segv_skip)   page accesses through the TLB
    ("syscall", op, args)               handled by the coordinator; the thread waits
    ("sleep", ns)
    ("exit",)

A loop step runs its body `repeat` times; a count step adds one to the thread's
iteration counter (will-it-scale's `(*iterations)++`), and the thread exits once it has
counted `iterations`. mmap/munmap/mprotect/madvise act on `pages` pages from `offset`
within the mapping; with `cursor` the range moves on by `pages` each time the step runs.

The interpreter's position is plain data (a stack of step indices and loop counts), not
a generator, so a checkpoint can save a thread mid-program (emu/checkpoint.py).
"""

import numpy as np

from emu.mm.mm_types import PROT_BITS
from emu.workload.patterns import ACCESS, access_kinds, page_sequence


def work_units(spec: dict) -> int:
    """A thread's expected work, for progress: its iteration limit (will-it-scale's
    counter) if it has one, else its tagged steps (e.g. tokens) over all repetitions, or
    its repetitions if no step is tagged; 0 for a daemon. Tags inside loop steps are not
    expanded (progress only)."""
    if spec["daemon"]:
        return 0
    if spec["iterations"]:
        return spec["iterations"]
    return spec["repeat"] * (sum(1 for s in spec["steps"] if s["tag"]) or 1)


def work_unit_name(spec: dict) -> str:
    """What one work unit of the thread is: "iteration" (counted or repeated) or its tag."""
    tags = {s["tag"] for s in spec["steps"] if s["tag"]}
    if spec["iterations"] or not tags:
        return "iteration"
    return tags.pop() if len(tags) == 1 else "tagged step"


class Thread:
    """A thread of a process, pinned to one CPU, with a seeded random stream of its own."""

    def __init__(self, tid: int, mm: int, index: int, nthreads: int, spec: dict,
                 layout, file_ids: dict, seed: int):
        self.tid, self.mm, self.daemon = tid, mm, spec["daemon"]
        self.index, self.nthreads = index, nthreads   # position among its group's threads
        self.spec, self.layout, self.file_ids = spec, layout, file_ids
        self.rng = np.random.default_rng([seed, tid])
        self.cursors: dict[tuple, int] = {}    # step path -> its cursor
        self.frames = [[0, 0]]    # per nesting level: [next step index, loop passes done]
        self.passes = 0           # passes over the whole program
        self.tag_next = ""        # the tag of the step just done, reported next
        self.owe_unit = False     # a reported tag's work unit, counted on the next call
        self.finished = False
        self.action = None        # current action, with progress in self.pos
        self.pos = 0
        self.state = "ready"      # ready | kernel | io | sleep | done
        self.wake_at = 0
        self.exit_ns = -1
        self.tags: dict[str, list[int]] = {}   # tag -> completion times
        self.units_done = 0       # work units (see work_units) finished, for progress
        self.unit = int(not spec["daemon"])   # daemons' work is not counted
        self.iterations = 0       # count steps run
        self.hot = [v for h in spec["hot"] for v in self._hot_pages(h)]
        self.hot_at = None        # (PCID slot, epoch) its hot set was last walked into
        self.user_until = 0       # when it last stopped running user code on its CPU

    def _vma(self, name: str):
        return self.layout.vma_by_mm_name[(self.mm, name)]

    def _part(self, step: dict) -> tuple[int, int]:
        """(first vpage, pages) a step or hot entry covers: from its offset, or my part."""
        vma = self._vma(step["mapping"])
        first, npages = vma.start + step["offset"], vma.pages - step["offset"]
        if step["part"] == "thread":
            lo = npages * self.index // self.nthreads
            hi = npages * (self.index + 1) // self.nthreads
            first, npages = first + lo, max(1, hi - lo)
        return first, npages

    def _hot_pages(self, h: dict) -> list[tuple[int, int]]:
        """(vpage, access kind) of one hot-set entry."""
        first, npages = self._part(h)
        kind = ACCESS[h["access"]]
        return [(v, kind) for v in range(first, first + (h["pages"] or npages))]

    def _touch(self, step: dict, key: tuple) -> tuple:
        vma = self._vma(step["mapping"])
        first, npages = self._part(step)
        count = step["pages"] or npages
        vpages, self.cursors[key] = page_sequence(step["pattern"], first, npages, count,
                                                  self.cursors.get(key, 0), self.rng,
                                                  step["zipf_a"])
        kinds = access_kinds(step["access"], count, step["write_fraction"], self.rng)
        if step["access"] != "mix" and vma.kind == "code":
            kinds = 2
        return ("touch", vpages, kinds, step["work_ns"], int(step["segv"] == "skip"))

    def _syscall(self, step: dict, key: tuple) -> tuple:
        op = step["op"]
        if op == "kalloc":
            return ("syscall", op, (step["pages"],))
        if op in ("write", "truncate"):
            return ("syscall", op, (self.file_ids[step["file"]], step["offset"], step["pages"]))
        vma = self._vma(step["mapping"])
        first, npages = self.range_of(step, key, vma.pages)
        extra = (PROT_BITS[step["prot"]] if op == "mprotect" else int(step["fixed"])
                 if op == "mmap" else step["advice"] if op == "madvise" else 0)
        return ("syscall", op, (vma.idx, extra, first, npages))

    def range_of(self, step: dict, key: tuple, size: int) -> tuple[int, int]:
        """(first page within the mapping, pages) of a range step (its path in the
        program is `key`); a cursor moves on."""
        npages = step["pages"] or size - step["offset"]
        if not step["cursor"]:
            return step["offset"], npages
        at = self.cursors.get(key, 0)
        self.cursors[key] = (at + npages) % (size - step["offset"])
        return step["offset"] + at, npages

    def _steps(self) -> list[dict]:
        """The step list the innermost frame walks (a loop step's body, or the program)."""
        steps = self.spec["steps"]
        for index, _ in self.frames[:-1]:
            steps = steps[index]["steps"]
        return steps

    def _advance(self) -> tuple:
        """The next action: each step's action, then ("tag", tag) if the step is tagged;
        loop bodies `repeat` times; the program `repeat` times (0: forever); ("exit",)
        at the end or once a count step reaches the iteration limit."""
        spec, frames = self.spec, self.frames
        if self.owe_unit:
            self.owe_unit = False
            self.units_done += self.unit
        while not self.finished:
            if self.tag_next:
                tag, self.tag_next, self.owe_unit = self.tag_next, "", True
                return ("tag", tag)
            steps = self._steps()
            frame = frames[-1]
            if frame[0] == len(steps):                  # the end of a step list
                if len(frames) == 1:                    # a pass over the program
                    self.passes += 1
                    tagged = any(step["tag"] for step in spec["steps"])
                    self.units_done += self.unit * (not tagged and not spec["iterations"])
                    self.finished = 0 < spec["repeat"] <= self.passes
                    frame[0] = 0
                    continue
                frame[1] += 1                           # a pass over a loop body
                frames.pop()
                loop = self._steps()[frames[-1][0]]
                if frame[1] < loop["repeat"]:
                    frames.append([0, frame[1]])
                else:
                    self._done(loop)
                continue
            action = self._step(steps[frame[0]], tuple(f[0] for f in frames))
            if action is not None:
                return action
        return ("exit",)

    def _step(self, step: dict, key: tuple) -> tuple | None:
        """Run the step at path `key`: its action, or None if it has none (a loop is
        entered, a count counted)."""
        op = step["op"]
        if op == "loop":
            if step["repeat"] > 0:
                self.frames.append([0, 0])
            else:
                self._done(step)
            return None
        if op == "count":
            self.iterations += 1
            self.units_done += self.unit
            if self.iterations == self.spec["iterations"]:
                self.finished = True
            else:
                self._done(step)
            return None
        action = self._touch(step, key) if op in ("touch", "spin") else \
            ("sleep", step["ns"]) if op == "sleep" else self._syscall(step, key)
        self._done(step)
        return action

    def _done(self, step: dict) -> None:
        """The step at the innermost frame's index is done: move on; its tag comes next."""
        self.frames[-1][0] += 1
        self.tag_next = step["tag"]

    def next_action(self) -> tuple:
        self.action = self._advance()
        self.pos = 0
        return self.action
