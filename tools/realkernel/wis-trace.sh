#!/bin/sh
# wis-trace.sh TEST [SECONDS] - run will-it-scale's TEST (threads, 2 tasks; built by
# wis.sh) on a private tmpfs /tmp without huge pages, under SCHED_FIFO, with the
# tlb:tlb_flush tracepoint (reason 4, "remote IPI send": one per native_flush_tlb_multi()
# call, before should_flush_tlb() filters the targets; reason 1, "remote shootdown": a
# flush done in the IPI handler) and sched:sched_switch of the tasks, with the kernel
# stack of each switch out in D, and munmap's and mmap's entry and exit. Prints wisdrv's
# line, then trace_summary.py's: requests by what the other task was doing, flushes
# done, the tasks' D sleeps and where they slept, how long each munmap took, and who
# took mmap_lock first after a munmap that the other task waited behind. SYSCALLS=""
# traces no system call (they put munmap() and mmap() on the slow syscall path, which
# delays a task's next mmap() after its munmap(): then only the D sleeps tell where the
# tasks waited). Needs root and tracefs.
set -e
T=/sys/kernel/tracing
[ -d $T/events ] || mount -t tracefs nodev $T
here=$(cd "$(dirname "$0")" && pwd)
bin=${BUILD:-$here/build}/${1:?usage: wis-trace.sh TEST [SECONDS]}_threads
echo 0 > $T/tracing_on
echo 16384 > $T/buffer_size_kb
echo > $T/trace
echo 'reason == 4 || reason == 1' > $T/events/tlb/tlb_flush/filter
echo 'prev_comm ~ "'"$1"'*" || next_comm ~ "'"$1"'*"' > $T/events/sched/sched_switch/filter
echo 'stacktrace if prev_comm ~ "'"$1"'*" && prev_state == 2' > $T/events/sched/sched_switch/trigger
syscalls=${SYSCALLS-sys_enter_munmap sys_exit_munmap sys_enter_mmap sys_exit_mmap}
for e in $syscalls; do
  echo 'common_pid != 0' > $T/events/syscalls/$e/filter
  echo 1 > $T/events/syscalls/$e/enable
done
echo 1 > $T/events/tlb/tlb_flush/enable
echo 1 > $T/events/sched/sched_switch/enable
echo 1 > $T/tracing_on
unshare -m sh -c "mount -t tmpfs -o huge=never tmpfs /tmp && cd /tmp && chrt -f 2 $bin 2 ${2:-1}"
echo 0 > $T/tracing_on
echo 0 > $T/events/tlb/tlb_flush/enable
echo 0 > $T/events/sched/sched_switch/enable
for e in $syscalls; do
  echo 0 > $T/events/syscalls/$e/enable
done
echo '!stacktrace' > $T/events/sched/sched_switch/trigger
echo 0 > $T/events/sched/sched_switch/filter
python3 "$here/trace_summary.py" "$1" < $T/trace
