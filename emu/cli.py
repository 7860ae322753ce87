"""Command line: `mpirun -n N python -m emu [SUBCOMMAND] [OPTIONS]`.

Without a subcommand it compares vanilla and luf on the default scenario. `scenarios`
and `show` need no MPI. Bad input is one line on stderr and exit status 2; an exception
on any rank during a run aborts the whole job (MPI_Abort), so no rank is left hanging.
"""

import argparse
import json
import os
import sys

from emu.errors import EmuError

DEFAULT_SCENARIO = "llama-tiering"
DEFAULT_POLICIES = "vanilla,luf"
MAX_RESULTS_BYTES = 256 << 20   # refused by `show` before reading


class _Parser(argparse.ArgumentParser):
    """Usage errors are one line and status 2, like every other bad input."""

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
    p.add_argument("--quiet", action="store_true", help="do not print the report")
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
                     help="vanilla, luf, luf-fixed, ideal or unsafe (default: %(default)s)")
    _common(run)
    cmp_ = sub.add_parser("compare", help="run several policies and compare them")
    cmp_.add_argument("--policies", default=DEFAULT_POLICIES,
                      help="comma-separated list (default: %(default)s)")
    _common(cmp_)
    sub.add_parser("scenarios", help="list the built-in scenarios (no mpirun needed)")
    show = sub.add_parser("show", help="render a results file (no mpirun needed)")
    show.add_argument("results", help="a JSON file written by --json")
    show.add_argument("--format", default="report",
                      choices=("report", "interrupts", "perf", "vmstat", "csv"))
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
    from emu.report.render import render
    from emu.results import SCHEMA

    path = args.results
    try:
        size = os.stat(path).st_size
        if size > MAX_RESULTS_BYTES:
            raise EmuError(f"{size} bytes: larger than any results file emu writes", path)
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as exc:
        raise EmuError(f"cannot read results: {exc.strerror}", path) from None
    except json.JSONDecodeError as exc:
        raise EmuError(f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                       path) from None
    except (UnicodeDecodeError, RecursionError):
        raise EmuError("not JSON text", path) from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or \
            not isinstance(doc.get("runs"), list):
        raise EmuError(f"not an emu results file (no schema '{SCHEMA}' with 'runs')", path)
    try:
        text = render(doc, args.format)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise EmuError(f"malformed results file ({type(exc).__name__}: {exc})", path) from None
    sys.stdout.write(text)


def cmd_simulate(args, argv: list[str]) -> None:
    """run/compare under MPI: set up on every rank, run each policy, report on rank 0."""
    from emu.engine.liveness import RankLost
    from emu.engine.mpi_env import abort_job, init_mpi

    MPI = init_mpi()
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    try:
        policies, sc, ncpus, placement = _prepare(args, comm.Get_size())
    except EmuError as exc:          # every rank sees the same input and the same error
        if rank == 0:
            sys.stderr.write(f"emu: error: {exc}\n")
        sys.exit(2)
    try:
        from emu.report.render import render
        from emu.results import results_document, write_json_atomic
        from emu.runner import run_policy

        runs = []
        for policy in policies:
            run = run_policy(MPI, comm, sc, policy, ncpus, placement, args.debug_fail_rank)
            runs.append(run)
        if rank == 0:
            doc = results_document(runs, argv)
            if args.json:
                write_json_atomic(args.json, doc)
            if not args.quiet:
                sys.stdout.write(render(doc, "report"))
                sys.stdout.flush()
    except EmuError as exc:
        abort_job(MPI, f"error: {exc}", 2)
    except RankLost as exc:
        abort_job(MPI, exc.args[0], 1)
    except Exception as exc:  # noqa: BLE001 - any failure must end every rank
        abort_job(MPI, f"{type(exc).__name__}: {exc}", 1)


def _prepare(args, ranks: int):
    from emu.engine.placement import place
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
    return policies, sc, ncpus, place(ncpus, ranks)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    try:
        if args.command == "scenarios":
            cmd_scenarios()
        elif args.command == "show":
            cmd_show(args)
        else:
            cmd_simulate(args, argv)
    except EmuError as exc:
        _fail(str(exc))
