#!/usr/bin/env bash
# Run the default emu comparison (vanilla vs luf) on a laptop or workstation.
#
#   launch/local.sh [RANKS] [extra emu args...]
#
#   launch/local.sh                      # 128 ranks = 128 simulated CPUs
#   launch/local.sh 16 --seed 7          # 16 ranks, extra args go to `emu compare`
#   launch/local.sh --scenario NAME      # first arg not a number: 128 ranks
#
# Environment:
#   EMU_HOSTFILE      hostfile to spread ranks over machines (see hosts.example);
#                     passed as `-f` (MPICH/Intel MPI hydra) or `--hostfile` (Open MPI)
#   EMU_MPIRUN        launcher to use (default: mpirun found on PATH after the venv)
#   EMU_MPIRUN_ARGS   extra launcher options, split on whitespace (e.g. "--bind-to none")
#
# Results go to results/emu-local-<timestamp>.json in the repo root; the report is
# printed by rank 0. Re-read them later with `python -m emu show PATH --format ...`.
set -euo pipefail

# The repo root is one level above this script, wherever it is called from.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

# Prefer the repo's venv: `pip install -e '.[mpich]'` puts mpirun/mpiexec from the
# MPICH wheel in .venv/bin, so activating it selects the matching launcher too.
if [[ -f "$root/.venv/bin/activate" && -z "${VIRTUAL_ENV:-}" ]]; then
    # Older activate scripts read unset variables; don't let `set -u` trip on them.
    set +u
    # shellcheck disable=SC1091
    source "$root/.venv/bin/activate"
    set -u
fi

ranks=128
if [[ $# -gt 0 && "$1" =~ ^[0-9]+$ ]]; then
    ranks=$((10#$1))   # 10#: "08" is decimal 8, not a bad octal number
    shift
fi
if (( ranks < 1 )); then
    echo "local.sh: RANKS must be at least 1 (got $ranks)" >&2
    exit 2
fi

mpirun="${EMU_MPIRUN:-mpirun}"
if ! command -v "$mpirun" >/dev/null 2>&1; then
    echo "local.sh: '$mpirun' not found; run: pip install -e '.[mpich]' (or load an MPI module)" >&2
    exit 127
fi

# Absolute interpreter path: ranks started on other hosts (EMU_HOSTFILE) do not
# inherit this shell's venv activation, but the venv's python works without it.
# sys.executable also sees through wrappers such as pyenv shims.
python="$(command -v python || command -v python3 || true)"
if [[ -z "$python" ]]; then
    echo "local.sh: no python on PATH" >&2
    exit 127
fi
python="$("$python" -c 'import sys; print(sys.executable)')"

# Open MPI and MPICH-style (hydra: MPICH, Intel MPI, MVAPICH) launchers differ in
# their hostfile flag and in whether they allow more ranks than slots.
# `|| true`: some launchers exit non-zero after printing their version.
version="$("$mpirun" --version 2>&1 || true)"
flavour=hydra
if grep -qiE 'open mpi|openrte' <<<"$version"; then
    flavour=openmpi
fi

hostfile="${EMU_HOSTFILE:-}"
if [[ -n "$hostfile" && ! -r "$hostfile" ]]; then
    echo "local.sh: EMU_HOSTFILE=$hostfile is not readable" >&2
    exit 2
fi

launcher_args=(-n "$ranks")
if [[ "$flavour" == openmpi ]]; then
    [[ -n "$hostfile" ]] && launcher_args+=(--hostfile "$hostfile")
    # Open MPI refuses more ranks than slots (cores here, or the hostfile's slots).
    # emu never busy-waits, so oversubscribing is safe and is the normal laptop case.
    if [[ -n "$hostfile" ]]; then
        # Sum "host slots=N" (Open MPI) or "host:N" (hydra) lines; a bare host is 1.
        slots="$(awk '
            { sub(/#.*/, "") }
            NF == 0 { next }
            match($0, /slots[ \t]*=[ \t]*[0-9]+/) { s = substr($0, RSTART, RLENGTH); sub(/.*=[ \t]*/, "", s); n += s; next }
            match($1, /:[0-9]+$/) { n += substr($1, RSTART + 1); next }
            { n += 1 }
            END { print n + 0 }' "$hostfile")"
    else
        slots="$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)"
    fi
    if (( ranks > slots )); then
        launcher_args+=(--oversubscribe)
    fi
    # Open MPI will not start as root (containers) without being told it is fine.
    if [[ "$(id -u)" == 0 ]]; then
        launcher_args+=(--allow-run-as-root)
    fi
else
    # Hydra oversubscribes without a flag.
    [[ -n "$hostfile" ]] && launcher_args+=(-f "$hostfile")
fi

extra_launcher_args=()
if [[ -n "${EMU_MPIRUN_ARGS:-}" ]]; then
    read -r -a extra_launcher_args <<<"$EMU_MPIRUN_ARGS"
fi

mkdir -p "$root/results"
json="$root/results/emu-local-$(date +%Y%m%d-%H%M%S).json"

cmd=("$mpirun" "${launcher_args[@]}" ${extra_launcher_args[@]+"${extra_launcher_args[@]}"}
     "$python" -m emu compare --json "$json" "$@")
echo "local.sh: ${cmd[*]}" >&2
"${cmd[@]}"
echo "local.sh: results in $json (view: python -m emu show $json --format report|interrupts|perf|vmstat|csv)" >&2
