#!/usr/bin/env bash
#PBS -N emu
#PBS -l select=2:ncpus=64:mpiprocs=64
#PBS -l walltime=00:30:00
#PBS -j oe
# Torque instead of PBS Pro:  #PBS -l nodes=2:ppn=64
# Output goes to emu.o<jobid> in the submit directory (-j oe joins stderr into it).
#
# Run the default emu comparison (vanilla vs luf) as one MPI job, one rank per
# simulated CPU. select=2:ncpus=64:mpiprocs=64 gives 2 x 64 = 128 ranks; mpiprocs
# is what fills $PBS_NODEFILE, so it sets the rank count. Submit from the repo root:
#
#   qsub launch/pbs.sh
#   qsub -l select=4:ncpus=64:mpiprocs=64 launch/pbs.sh        # 256 ranks
#   qsub -v EMU_SCENARIO=NAME,EMU_ARGS="--seed 7" launch/pbs.sh
#
# qsub does not pass your shell's environment unless asked: use -v VAR=value (or -V).
#   EMU_VENV       venv to activate (default $PBS_O_WORKDIR/.venv); "" = python on PATH
#   EMU_SCENARIO   scenario name (default: emu's default scenario)
#   EMU_ARGS       extra `emu compare` arguments, split on whitespace
#   EMU_RANKS      rank count (default: lines in $PBS_NODEFILE, else 128)
#   EMU_MPIEXEC    launcher (default mpiexec); EMU_MPIEXEC_ARGS extra launcher options
#   EMU_SHOW       what to print, read back from the results file (default report;
#                  "" to skip): report|interrupts|perf|vmstat|csv
#   EMU_CHECKPOINT, EMU_CHECKPOINT_EVERY_NS, EMU_STOP_AFTER_S: see launch/resume.sh.
#                  PBS kills soon after its SIGTERM at the walltime, so give the run
#                  its own stop, e.g. -v EMU_STOP_AFTER_S=1620 for 30 min; submitting
#                  the job again continues from the checkpoint.
# See docs/cluster.md.
set -euo pipefail

# PBS starts jobs in $HOME; results and the venv are relative to the submit directory.
submit_dir="${PBS_O_WORKDIR:-$PWD}"
cd "$submit_dir"
job_id="${PBS_JOBID:-manual-$(date +%Y%m%d-%H%M%S)}"

# Activate the venv that has emu and an mpi4py built against the site MPI.
venv="${EMU_VENV-$submit_dir/.venv}"
if [[ -n "$venv" ]]; then
    if [[ ! -f "$venv/bin/activate" ]]; then
        echo "pbs.sh: no venv at $venv (set EMU_VENV, or EMU_VENV= to use PATH)" >&2
        exit 2
    fi
    # Older activate scripts read unset variables; don't let `set -u` trip on them.
    set +u
    # shellcheck disable=SC1091
    source "$venv/bin/activate"
    set -u
fi

# $PBS_NODEFILE has one line per MPI process slot (mpiprocs per chunk).
nodefile="${PBS_NODEFILE:-}"
slots=0
if [[ -n "$nodefile" && -r "$nodefile" ]]; then
    slots="$(grep -cv '^[[:space:]]*$' "$nodefile" || true)"
fi
default_ranks=128
(( slots > 0 )) && default_ranks="$slots"
ranks="${EMU_RANKS:-$default_ranks}"

mpiexec="${EMU_MPIEXEC:-mpiexec}"
# Open MPI and hydra (MPICH, Intel MPI, MVAPICH) spell the hostfile flag differently.
# `|| true`: some launchers exit non-zero after printing their version.
version="$("$mpiexec" --version 2>&1 || true)"
launcher_args=(-n "$ranks")
if grep -qiE 'open mpi|openrte' <<<"$version"; then
    [[ -n "$nodefile" ]] && launcher_args+=(--hostfile "$nodefile")
    # Open MPI refuses more ranks than slots; emu never busy-waits, so allow it.
    if (( ranks > slots )); then
        launcher_args+=(--oversubscribe)
    fi
else
    [[ -n "$nodefile" ]] && launcher_args+=(-f "$nodefile")
fi
extra_launcher_args=()
if [[ -n "${EMU_MPIEXEC_ARGS:-}" ]]; then
    read -r -a extra_launcher_args <<<"$EMU_MPIEXEC_ARGS"
fi

emu_args=()
if [[ -n "${EMU_SCENARIO:-}" ]]; then
    emu_args+=(--scenario "$EMU_SCENARIO")
fi
if [[ -n "${EMU_ARGS:-}" ]]; then
    read -r -a more <<<"$EMU_ARGS"
    emu_args+=("${more[@]}")
fi

mkdir -p results
json="results/emu-$job_id.json"

# Absolute interpreter path: ranks on the other nodes do not inherit this shell's venv
# activation (Open MPI does not forward PATH), but the venv's python works without it.
python="$(python -c 'import sys; print(sys.executable)')"

nodes="?"
[[ -n "$nodefile" && -r "$nodefile" ]] && nodes="$(sort -u "$nodefile" | wc -l)"
echo "emu: job $job_id, $ranks ranks on $nodes node(s)"
# Which MPI mpi4py was built against (callable before MPI_Init). Informational only.
"$python" -c 'import mpi4py; mpi4py.rc.initialize = False; from mpi4py import MPI
print("emu: MPI library:", MPI.Get_library_version().splitlines()[0])' \
    || echo "emu: warning: cannot import mpi4py.MPI" >&2

# --cpus defaults to the number of ranks, so 128 ranks simulate 128 CPUs.
# shellcheck source=launch/resume.sh
source launch/resume.sh
cmd=("$mpiexec" "${launcher_args[@]}" ${extra_launcher_args[@]+"${extra_launcher_args[@]}"}
     "$python" -m emu compare --quiet "${run_args[@]}")
echo "emu: ${cmd[*]}"
emu_launch "${cmd[@]}"
emu_finished || exit 0

# Print the report once more from the file, so the end of the job log is the result
# (and proves the JSON was written and is readable).
show="${EMU_SHOW-report}"
if [[ -n "$show" ]]; then
    "$python" -m emu show "$json" --format "$show"
fi
echo "emu: results in $submit_dir/$json"
