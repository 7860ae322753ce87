"""The top of a py-spy profile in collapsed-stack form (`py-spy record --format raw`):
inclusive and self share of the samples per function, largest first.

    python tools/profile/top.py rank0.txt [rank1.txt ...] [--n 25]
"""

import argparse
import re
from collections import Counter

FRAME = re.compile(r"\s+\((?:.*/)?([^/]+/[^/]+)(?::\d+)?\)$")   # keep "dir/file.py"


def load(path: str) -> list[tuple[list[str], int]]:
    """(frames outermost first, samples) per stack; frames read "func (dir/file.py)"."""
    stacks = []
    with open(path) as f:
        for line in f:
            stack, _, n = line.rstrip("\n").rpartition(" ")
            if stack:
                stacks.append(([FRAME.sub(r" (\1)", fr) for fr in stack.split(";")], int(n)))
    return stacks


def shares(stacks: list[tuple[list[str], int]]) -> tuple[int, Counter, Counter]:
    """(total samples, inclusive samples, self samples) per function."""
    total, incl, own = 0, Counter(), Counter()
    for frames, n in stacks:
        total += n
        for fr in set(frames):
            incl[fr] += n
        own[frames[-1]] += n
    return total, incl, own


def report(path: str, n: int) -> str:
    total, incl, own = shares(load(path))
    out = [f"{path}: {total} samples", f"{'incl %':>7} {'self %':>7}  function (by inclusive)"]
    out += [f"{100 * c / total:>7.1f} {100 * own[f] / total:>7.1f}  {f}"
            for f, c in incl.most_common(n)]
    out.append(f"{'incl %':>7} {'self %':>7}  function (by self)")
    out += [f"{100 * incl[f] / total:>7.1f} {100 * c / total:>7.1f}  {f}"
            for f, c in own.most_common(n)]
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("profiles", nargs="+")
    ap.add_argument("--n", type=int, default=25, help="functions listed (default: %(default)s)")
    args = ap.parse_args()
    print("\n\n".join(report(p, args.n) for p in args.profiles))


if __name__ == "__main__":
    main()
