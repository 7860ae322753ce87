"""PNG plots of a results document (`python -m emu plot`), drawn with matplotlib (the
optional `plot` extra). Each plot function draws one figure and returns the series it
drew, taken from the JSON unchanged, so tests can compare the two."""

import os

from emu.errors import EmuError
from emu.report.seed import comparable, seed_changes

# plot name -> run fields it needs (older results files lack the last two)
PLOTS = {"tlb": ("per_cpu",), "cdf": ("shootdown_latency_cdf",), "timeline": ("timeline",),
         "seed": ("per_cpu", "runtime_ns")}
INSTALL = "plotting needs matplotlib: pip install -e '.[plot]' (or pip install matplotlib)"


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend, or a one-line EmuError."""
    try:
        import matplotlib
    except ImportError:
        raise EmuError(INSTALL) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(plt, fig, path: str) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_tlb(plt, doc: dict, path: str) -> dict[str, list[int]]:
    """The /proc/interrupts TLB row, one bar per CPU and policy."""
    rows = {r["policy"]: r["per_cpu"]["tlb_shootdowns"] for r in doc["runs"]}
    ncpus = max(len(row) for row in rows.values())
    fig, ax = plt.subplots(figsize=(max(6.0, 0.12 * ncpus * len(rows)), 3.5))
    width = 0.8 / len(rows)
    for i, (policy, row) in enumerate(rows.items()):
        ax.bar([c + (i - (len(rows) - 1) / 2) * width for c in range(len(row))], row, width,
               label=f"{policy} (total {sum(row):,})")
    ax.set_xlabel("CPU")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("TLB shootdowns received")
    ax.set_title(f"TLB row per CPU ({doc['runs'][0]['scenario']})")
    ax.legend()
    _save(plt, fig, path)
    return rows


def plot_cdf(plt, doc: dict, path: str) -> dict[str, tuple[list[int], list[int]]]:
    """Distribution of shootdown latencies: percentile against simulated ns."""
    series = {r["policy"]: (r["shootdown_latency_cdf"]["ns"], r["shootdown_latency_cdf"]["p"])
              for r in doc["runs"]}
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for policy, (ns, p) in series.items():
        ax.step(ns, p, where="post", label=policy)
    ax.set_xlabel("shootdown latency (simulated ns)")
    ax.set_ylabel("percentile")
    ax.set_title("Shootdown latency CDF")
    ax.legend()
    _save(plt, fig, path)
    return series


def plot_timeline(plt, doc: dict, path: str) -> dict[str, dict[str, list]]:
    """Cumulative IPIs, and free pages per node (with LUF-keyed pages), over simulated time."""
    series = {}
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(7.0, 6.0))
    for r in doc["runs"]:
        tl = r["timeline"]
        ms = [t / 1e6 for t in tl["t_ns"]]
        nodes = list(zip(*tl["free_pages"], strict=True))
        series[r["policy"]] = {"t_ns": tl["t_ns"], "ipis": tl["ipis"],
                               "free_pages": [list(n) for n in nodes],
                               "luf_pending": tl["luf_pending"]}
        line, = top.plot(ms, tl["ipis"], label=r["policy"])
        for n, free in enumerate(nodes):
            bottom.plot(ms, free, color=line.get_color(), linestyle=("-", "--", ":")[n % 3],
                        label=f"{r['policy']} node {n} free")
        if any(tl["luf_pending"]):
            bottom.plot(ms, tl["luf_pending"], color=line.get_color(), linestyle="-.",
                        label=f"{r['policy']} LUF-keyed pages")
    top.set_ylabel("IPIs sent (cumulative)")
    top.set_title("IPIs and free memory over simulated time")
    top.legend()
    bottom.set_xlabel("simulated time (ms)")
    bottom.set_ylabel("pages")
    bottom.legend(fontsize="small")
    _save(plt, fig, path)
    return series


def plot_seed(plt, doc: dict, path: str) -> list[tuple[str, float, float | None]]:
    """luf against vanilla, in %, for the slides' metrics: the slides beside emu."""
    changes = seed_changes(doc["runs"])
    fig, ax = plt.subplots(figsize=(7.0, 3.5))
    ys = range(len(changes))
    ax.barh([y - 0.2 for y in ys], [c[1] for c in changes], 0.4, label="slides")
    known = [(y, c[2]) for y, c in zip(ys, changes, strict=True) if c[2] is not None]
    ax.barh([y + 0.2 for y, _ in known], [v for _, v in known], 0.4, label="emu")
    ax.set_yticks(list(ys), [c[0] for c in changes])
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_xlabel("luf vs vanilla (%)")
    ax.set_title("Beside the slides (emu is scaled down)")
    ax.legend()
    _save(plt, fig, path)
    return changes


DRAW = {"tlb": plot_tlb, "cdf": plot_cdf, "timeline": plot_timeline, "seed": plot_seed}


def seed_problem(doc: dict) -> str:
    """Why the seed plot cannot be drawn for `doc` ("" if it can)."""
    if not comparable(doc["runs"]):
        return "needs a llama scenario with a vanilla run"
    if not any(r["policy"] == "luf" for r in doc["runs"]):
        return "needs a luf run"
    return ""


def plot_all(doc: dict, out_dir: str, names: list[str]) -> dict[str, tuple[str, object]]:
    """Draw `names` into out_dir/NAME.png; returns name -> (path, series drawn)."""
    plt = pyplot()
    os.makedirs(out_dir, exist_ok=True)
    drawn = {}
    for name in names:
        path = os.path.join(out_dir, f"{name}.png")
        drawn[name] = (path, DRAW[name](plt, doc, path))
    return drawn
