#!/bin/sh
# measure.sh [ITER] [REPEATS] - run tlbpair for 3 patterns x 2 sibling modes,
# REPEATS times each, and print a Markdown table of real TLB-shootdown IPIs.
# Raw per-run lines go to stderr (prefixed "# ") so stdout is just the table.
set -e
ITER=${1:-20000}
REPEATS=${2:-5}
cd "$(dirname "$0")"

# Build exactly as documented.
cc -O2 -pthread -Wall -o tlbpair tlbpair.c

# RT=1: run tlbpair as SCHED_FIFO (root only) so other load cannot preempt
# thread B; needed on a shared, busy machine (see docs/real-kernel.md).
RUN=""
[ "${RT:-0}" = 1 ] && RUN="chrt -f 1"

# The counts are only meaningful when thread B really owns CPU 1: if other
# work preempts it, CPU 1 leaves the mm's cpumask and gets no IPIs.
load=$(cut -d' ' -f1 /proc/loadavg)
echo "# loadavg(1m) at start: $load, RT=${RT:-0}" >&2
[ -z "$RUN" ] && awk -v l="$load" 'BEGIN { exit !(l > 1.5) }' &&
    echo "# WARNING: machine is busy (load $load); spin-mode counts will be too low" >&2

echo "| pattern | sibling | iter | IPIs/iter mean (min-max) | IPIs/syscall mean | CPU0 delta mean | CPU1 delta mean | idle baseline IPIs, same duration, mean (min-max) | loop time s mean | emu |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for pat in munmap madvise mprotect; do
  for sib in spin sleep; do
    # One line of key=value pairs per run; awk aggregates the REPEATS runs.
    i=0
    while [ $i -lt "$REPEATS" ]; do
      line=$($RUN ./tlbpair "$pat" "$sib" "$ITER")
      echo "# $line" >&2
      echo "$line"
      i=$((i + 1))
    done | awk '
      { for (f = 1; f <= NF; f++) { split($f, kv, "="); v[kv[1]] = kv[2] }
        n++; pi += v["per_iter"]; pc += v["per_call"]
        c0 += v["cpu0"]; c1 += v["cpu1"]; b += v["base_total"]; el += v["elapsed_s"]
        if (n == 1 || v["per_iter"] < pmin) pmin = v["per_iter"]
        if (n == 1 || v["per_iter"] > pmax) pmax = v["per_iter"]
        if (n == 1 || v["base_total"] < bmin) bmin = v["base_total"]
        if (n == 1 || v["base_total"] > bmax) bmax = v["base_total"]
        pat = v["pattern"]; sib = v["sibling"]; it = v["iter"] }
      END { printf "| %s-pair | %s | %d | %.4f (%.4f-%.4f) | %.4f | %.1f | %.1f | %.1f (%d-%d) | %.3f | see below |\n",
                   pat, sib, it, pi/n, pmin, pmax, pc/n, c0/n, c1/n, b/n, bmin, bmax, el/n }'
  done
done
