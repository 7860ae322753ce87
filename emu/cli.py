"""Command line: `mpirun -n N python -m emu [SUBCOMMAND] [OPTIONS]`.

Without a subcommand it compares vanilla and luf on the default scenario. `scenarios`,
`show` and `plot` need no MPI. Bad input is one line on stderr and exit status 2; an exception
on any rank during a run aborts the whole job (MPI_Abort), so no rank is left hanging.
"""

import argparse
import sys

from emu.errors import EmuError
from emu.report import FORMATS

DEFAULT_SCENARIO = "llama-tiering"
DEFAULT_POLICIES = "vanilla,luf"


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line and status 2, like every other bad input. Options are
    not abbreviated: `--scen` would slip past the check that --resume takes the
    scenario options from the checkpoint."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        _fail(f"{self.prog}: {message} (see --help)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", default=DEFAULT_SCENARIO,
                   help="built-in scenario name or a TOML file (default: %(default)s)")
    p.add_argument("--seed", type=int, help="run seed (default: the scenario's)")
    p.add_argument("--cpus", type=int, help="simulated CPUs (default: one per MPI rank)")
    p.add_argument("--quantum-ns", type=int, help="window length in simulated ns")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override any scenario key, e.g. machine.dram_pages=8192")
    p.add_argument("--json", metavar="PATH", help="write results as JSON (atomically)")
    p.add_argument("--quiet", action="store_true",
                   help="print neither the report nor progress on stderr")
    p.add_argument("--trace", metavar="PATH",
                   help="write a timeline of each run (Chrome trace-event JSON; open it in "
                        "ui.perfetto.dev or chrome://tracing), capped at 200 MB")
    p.add_argument("--trace-span", metavar="START:END",
                   help="record only simulated time [START, END) in ns (no cap)")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="save a checkpoint of the run to PATH (atomically) every "
                        "--checkpoint-every-ns, and on SIGTERM or SIGUSR1 (then stop with "
                        "status 0)")
    p.add_argument("--checkpoint-every-ns", type=int, default=0, metavar="N",
                   help="simulated ns between checkpoints (default: only on a signal)")
    p.add_argument("--resume", metavar="PATH",
                   help="continue the run a checkpoint saved (any number of ranks; the "
                        "scenario and its options come from the checkpoint)")
    p.add_argument("--debug-fail-rank", type=int, default=-1, help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="python -m emu",
        description="emu: a multiprocess parallel emulator of TLB shootdowns. Run under "
                    "mpirun: each MPI rank simulates CPUs with their own TLBs; IPIs are "
                    "real MPI messages. Without a subcommand: compare vanilla and luf on "
                    f"'{DEFAULT_SCENARIO}'.")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run one policy")
    run.add_argument("--policy", default="vanilla",
                     help="vanilla, luf, ideal or unsafe (default: %(default)s)")
    _common(run)
    cmp_ = sub.add_parser("compare", help="run several policies and compare them")
    cmp_.add_argument("--policies", default=DEFAULT_POLICIES,
                      help="comma-separated list (default: %(default)s)")
    _common(cmp_)
    sub.add_parser("scenarios", help="list the built-in scenarios (no mpirun needed)")
    show = sub.add_parser("show", help="render a results file (no mpirun needed)")
    show.add_argument("results", help="a JSON file written by --json")
    show.add_argument("--format", default="report",
                      choices=FORMATS)
    plot = sub.add_parser("plot", help="draw PNG plots of a results file (needs matplotlib: "
                                       "pip install -e '.[plot]'; no mpirun needed)")
    plot.add_argument("results", help="a JSON file written by --json")
    plot.add_argument("--out", required=True, metavar="DIR", help="directory for the PNGs")
    plot.add_argument("--plots", default="all",
                      help="comma-separated from tlb, cdf, timeline, seed (default: every one "
                           "the file allows; seed needs llama-tiering with vanilla and luf)")
    return parser


def parse(argv: list[str]) -> argparse.Namespace:
    parser = build_parser()
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["compare", *argv]
    return parser.parse_args(argv)


def _fail(message: str) -> None:
    sys.stderr.write(f"emu: error: {message}\n")
    sys.exit(2)


def cmd_scenarios() -> None:
    from emu.scenario.load import builtin_description, builtin_names

    for name in builtin_names():
        first = builtin_description(name).split("\n")[0]
        print(f"{name:<18} {first}")


def cmd_show(args) -> None:
    from emu.report.readback import load_results, require
    from emu.report.render import NEEDS, render

    doc = load_results(args.results)
    require(doc, NEEDS.get(args.format, ()), f"--format {args.format}", args.results)
    try:
        text = render(doc, args.format)
    except KeyError as exc:
        raise EmuError(f"field {exc} is missing (written by another emu version?)",
                       args.results) from None
    except (IndexError, TypeError, ValueError, AttributeError) as exc:
        raise EmuError(f"malformed results file ({type(exc).__name__}: {exc})",
                       args.results) from None
    sys.stdout.write(text)


def cmd_plot(args) -> None:
    from emu.report.plot import PLOTS, plot_all, seed_problem
    from emu.report.readback import load_results, require

    doc = load_results(args.results)
    names = list(PLOTS) if args.plots == "all" else \
        [n.strip() for n in args.plots.split(",") if n.strip()]
    for name in names:
        if name not in PLOTS:
            raise EmuError(f"unknown plot '{name}' (one of {', '.join(PLOTS)})", "--plots")
        require(doc, PLOTS[name], f"plot '{name}' (choose others with --plots)", args.results)
    if "seed" in names and seed_problem(doc):
        if args.plots != "all":
            raise EmuError(f"plot 'seed' {seed_problem(doc)}", args.results)
        sys.stderr.write(f"emu: skipped plot 'seed': it {seed_problem(doc)}\n")
        names.remove("seed")
    for path, _ in plot_all(doc, args.out, names).values():
        print(f"wrote {path}")


def cmd_simulate(args, argv: list[str]) -> None:
    """run/compare under MPI: set up on every rank, run each policy, report on rank 0."""
    from emu import STARTED_S
    from emu.engine.liveness import RankLost
    from emu.engine.mpi_env import abort_job, init_mpi

    MPI = init_mpi()
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    try:
        (policies, sc, ncpus, placement, inputs, run_index), doc = \
            _prepared(MPI, comm, args, argv)
        trace = _trace_options(args, len(policies))
    except EmuError as exc:          # every rank has the same input and the same error
        if rank == 0:
            sys.stderr.write(f"emu: error: {exc}\n")
        sys.exit(2)
    try:
        from emu import protocol as P
        from emu.engine.sync import WindowSync
        from emu.results import results_document, write_json_atomic
        from emu.runner import Stopped, run_policy

        plan = None
        if args.checkpoint:
            from emu.checkpoint import Plan
            from emu.engine.sync import stop_on_signal

            stop_on_signal()
            plan = Plan(args.checkpoint, args.checkpoint_every_ns, inputs)
        runs = doc["done_runs"] if doc else []
        if plan:
            plan.done_runs = runs               # rank 0's list, grown run by run
        trace_file = None
        if trace:                       # imported only when asked for: every rank imports
            from emu.report.trace_file import TraceFile
            from emu.trace import TraceOptions

            trace_file = TraceFile(args.trace, trace[0], trace[1]) if rank == 0 else None
        # every run's; closed collectively (a rank that fails aborts the job instead)
        sync = WindowSync(MPI, comm, len(placement), P.PUB_SLOTS)
        for i, policy in enumerate(policies[run_index:], run_index):
            if plan:
                plan.run_index = i
            resume = (doc or {}) if args.resume and i == run_index else None
            run = run_policy(MPI, comm, sync, sc, policy, ncpus, placement,
                             args.debug_fail_rank, progress=not args.quiet,
                             trace=TraceOptions(i + 1, trace[1], trace[2]) if trace else None,
                             trace_file=trace_file,
                             started_s=STARTED_S if i == run_index else None,
                             plan=plan, resume=resume)
            runs.append(run)
        sync.close()
        if trace_file:
            trace_file.close()
        if rank == 0:
            doc = results_document(runs, inputs["argv"])
            if args.json:
                write_json_atomic(args.json, doc)
            if not args.quiet:
                from emu.report.render import render

                sys.stdout.write(render(doc, "report"))
                sys.stdout.flush()
    except Stopped as exc:          # on every rank, after the same checkpoint
        sync.close()
        if rank == 0:
            sys.stderr.write(f"emu: stopped by a signal after saving a checkpoint at simulated "
                             f"{exc.args[0]:,} ns of run {plan.run_index + 1} "
                             f"({policies[plan.run_index]}) to {args.checkpoint}; continue "
                             f"with --resume {args.checkpoint}\n")
    except EmuError as exc:
        abort_job(MPI, f"error: {exc}", 2)
    except RankLost as exc:
        abort_job(MPI, exc.args[0], 1)
    except Exception as exc:  # noqa: BLE001 - any failure must end every rank
        abort_job(MPI, f"{type(exc).__name__}: {exc}", 1)


def _trace_options(args, runs: int) -> tuple | None:
    """(file cap, span, each run's cap) for --trace, or None; the cap (bytes, env
    EMU_TRACE_CAP_BYTES for tests) applies only without --trace-span."""
    if args.trace_span and not args.trace:
        raise EmuError("--trace-span needs --trace PATH")
    if not args.trace:
        return None
    import os

    from emu.trace import CAP_ENV, DEFAULT_CAP_BYTES, parse_span

    if args.trace_span:
        return None, parse_span(args.trace_span), None
    cap = int(os.environ.get(CAP_ENV, DEFAULT_CAP_BYTES))
    return cap, None, cap // runs


def _prepared(MPI, comm, args, argv: list[str]):
    """_prepare on rank 0, its outcome (the checked scenario or the error) broadcast to
    the others: 128 ranks on 2 cores each reading, parsing and validating the same TOML
    add up in the start-up. Returns it and, on rank 0, the checkpoint to resume."""
    from emu.engine.collect import bcast_from_root
    from emu.engine.mpi_env import abort_job

    outcome = doc = None
    if comm.Get_rank() == 0:
        try:
            outcome, doc = _prepare(args, comm.Get_size(), argv)
        except EmuError as exc:
            outcome = exc
        except Exception as exc:  # noqa: BLE001 - the others wait for the broadcast
            abort_job(MPI, f"{type(exc).__name__}: {exc}", 1)
    outcome = bcast_from_root(comm, outcome)
    if isinstance(outcome, EmuError):
        raise outcome
    return outcome, doc


def _checkpoint_options(args, argv: list[str]) -> dict | None:
    """Check the checkpoint options; the checkpoint to resume, read, if any."""
    if args.checkpoint_every_ns and not args.checkpoint:
        raise EmuError("--checkpoint-every-ns needs --checkpoint PATH")
    if args.checkpoint_every_ns < 0:
        raise EmuError(f"--checkpoint-every-ns must not be negative, got {args.checkpoint_every_ns}")
    if args.trace and (args.checkpoint or args.resume):
        raise EmuError("--trace cannot be combined with --checkpoint or --resume (a "
                       "checkpoint does not save the timeline being traced)")
    if not args.resume:
        return None
    from emu.checkpoint import check_resume_argv, read

    check_resume_argv(argv)
    return read(args.resume)


def _prepare(args, ranks: int, argv: list[str] = ()):
    """(policies, scenario, CPUs, placement, inputs, run to start at), and the
    checkpoint to resume (or None)."""
    from emu.engine.placement import place
    from emu.scenario.fit import check_fits

    doc = _checkpoint_options(args, argv)
    if doc is not None:
        inputs = doc["inputs"]
        sc, ncpus = inputs["sc"], inputs["ncpus"]
        check_fits(sc, ncpus, ranks, args.resume)
        return (inputs["policies"], sc, ncpus, place(ncpus, ranks), inputs,
                doc["run_index"]), doc
    policies, sc, ncpus = _prepare_inputs(args, ranks)
    inputs = {"argv": list(argv), "policies": policies, "sc": sc, "ncpus": ncpus}
    return (policies, sc, ncpus, place(ncpus, ranks), inputs, 0), None


def _prepare_inputs(args, ranks: int):
    from emu.policy import check_policy
    from emu.scenario.fit import check_fits
    from emu.scenario.load import load_scenario

    policies = [args.policy] if args.command == "run" else \
        [p.strip() for p in args.policies.split(",") if p.strip()]
    for p in policies:
        check_policy(p)
    sc = load_scenario(args.scenario, args.set)
    if args.seed is not None:
        sc["scenario"]["seed"] = args.seed
    if args.quantum_ns is not None:
        if args.quantum_ns <= 0:
            raise EmuError("--quantum-ns must be positive")
        sc["scenario"]["quantum_ns"] = args.quantum_ns
    ncpus = args.cpus if args.cpus is not None else (sc["machine"]["cpus"] or ranks)
    if ncpus <= 0:
        raise EmuError(f"--cpus must be positive, got {ncpus}")
    for i, proc in enumerate(sc["process"]):
        for j, t in enumerate(proc["threads"]):
            bad = [c for c in t["cpus"] if c >= ncpus]
            if bad and len(bad) == len(t["cpus"]):
                raise EmuError(f"threads pinned to CPUs {bad} but the machine has {ncpus} CPUs",
                               f"{sc['scenario']['name']}: process.{i}.threads.{j}.cpus")
    if len(sc["process"]) > 62:
        raise EmuError("at most 62 processes (mm_cpumask bits)", sc["scenario"]["name"])
    check_fits(sc, ncpus, ranks, sc["scenario"]["name"])
    return policies, sc, ncpus


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    try:
        if args.command == "scenarios":
            cmd_scenarios()
        elif args.command == "show":
            cmd_show(args)
        elif args.command == "plot":
            cmd_plot(args)
        else:
            cmd_simulate(args, argv)
    except EmuError as exc:
        _fail(str(exc))
