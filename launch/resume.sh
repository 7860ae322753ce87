# Sourced by the batch scripts (from the repo root): checkpoint every run, and resume
# the latest checkpoint when one exists, so a job that hits its time limit is continued
# by submitting it again. Needs emu_args (the scenario options) and json (results file).
#
#   EMU_CHECKPOINT           checkpoint file (default results/emu-<scenario>.ckpt)
#   EMU_CHECKPOINT_EVERY_NS  simulated ns between checkpoints (default 5000000; 0: only
#                            when stopped by SIGTERM or SIGUSR1)
#   EMU_STOP_AFTER_S         send the launcher SIGUSR1 after this many wall seconds (for
#                            schedulers that kill soon after their own SIGTERM, e.g. PBS;
#                            hydra and Open MPI's mpirun pass SIGUSR1 on to the ranks, and
#                            Open MPI's mpirun would end the job on SIGTERM)
#
# When resuming, EMU_SCENARIO and EMU_ARGS are not passed: the scenario and its options
# come from the checkpoint (emu refuses them with --resume).

checkpoint="${EMU_CHECKPOINT:-results/emu-${EMU_SCENARIO:-default}.ckpt}"
run_args=(--json "$json" --checkpoint "$checkpoint"
          --checkpoint-every-ns "${EMU_CHECKPOINT_EVERY_NS:-5000000}")
if [[ -f "$checkpoint" ]]; then
    echo "emu: resuming from $checkpoint"
    run_args+=(--resume "$checkpoint")
else
    run_args+=(${emu_args[@]+"${emu_args[@]}"})
fi

# emu_launch COMMAND...: run the launcher, with the EMU_STOP_AFTER_S timer if set.
emu_launch() {
    if [[ -z "${EMU_STOP_AFTER_S:-}" ]]; then
        "$@"
        return
    fi
    "$@" &
    local launcher=$!
    ( sleep "$EMU_STOP_AFTER_S" && kill -USR1 "$launcher" 2>/dev/null ) &
    local timer=$!
    local status=0
    wait "$launcher" || status=$?
    kill "$timer" 2>/dev/null || true
    return "$status"
}

# emu_finished: true if the run completed (its results file exists); the checkpoint
# goes then, so that the next submission starts afresh. Otherwise it stays for the next.
emu_finished() {
    if [[ -f "$json" ]]; then
        rm -f "$checkpoint"
        return 0
    fi
    echo "emu: stopped before the end; $checkpoint is kept: submit the same job again to continue"
    return 1
}
