#!/bin/sh
# wis.sh [SECONDS] [REPEATS] - build will-it-scale's memory tests with wisdrv.c (no hwloc)
# and print, for 2 tasks in both modes, TLB-shootdown IPIs per iteration from the TLB row
# of /proc/interrupts.  Upstream sources: $WIS_SRC, a will-it-scale checkout or git
# directory; without it, cloned from GitHub.  RT=1 runs under chrt -f 2 (root; the tasks drop to FIFO 1).
# TMPFS=1 (root) gives each run a private tmpfs /tmp without huge pages (unshare -m), as
# emu has none: on ext4 the kernel maps page_fault3's file with large folios; but tmpfs
# has no readahead, which tlb_flush1's fault-around depends on (docs/real-kernel.md).
set -e
SECONDS_=${1:-5}
REPEATS=${2:-3}
TASKS=${TASKS:-2}
TESTS=${TESTS:-"tlb_flush1 tlb_flush2 tlb_flush3 page_fault1 page_fault2 page_fault3 mmap1 mmap2"}
here=$(cd "$(dirname "$0")" && pwd)
build=${BUILD:-$here/build}
mkdir -p "$build"
if [ ! -d "$build/tests" ]; then
  src=${WIS_SRC:-}
  if [ -z "$src" ]; then
    git clone -q https://github.com/antonblanchard/will-it-scale "$build/src"
    src=$build/src
  fi
  if [ -d "$src/tests" ]; then
    cp -r "$src/tests" "$build/tests"
  else                                       # a bare git directory (e.g. a mirror)
    git --git-dir="$src" archive HEAD tests | tar -x -C "$build"
  fi
  git --git-dir="${src%/}/.git" rev-parse HEAD 2>/dev/null > "$build/COMMIT" ||
    git --git-dir="$src" rev-parse HEAD > "$build/COMMIT"
fi
for t in $TESTS; do
  cc -O2 -Wall -DTEST="$t" -DTHREADS -pthread -o "$build/${t}_threads" "$here/wisdrv.c" "$build/tests/$t.c"
  cc -O2 -Wall -DTEST="$t" -o "$build/${t}_processes" "$here/wisdrv.c" "$build/tests/$t.c"
done
RUN=""
[ "${RT:-0}" = 1 ] && RUN="chrt -f 2"
TMP="/tmp, as it is"
[ "${TMPFS:-0}" = 1 ] && TMP="a private tmpfs, huge=never"
echo "# will-it-scale $(cat "$build/COMMIT"), kernel $(uname -r), loadavg $(cut -d' ' -f1-3 /proc/loadavg), RT=${RT:-0}, files on $TMP" >&2
for t in $TESTS; do
  for mode in threads processes; do
    r=0
    while [ $r -lt "$REPEATS" ]; do
      if [ "${TMPFS:-0}" = 1 ]; then
        unshare -m sh -c "mount -t tmpfs -o huge=never tmpfs /tmp && cd /tmp && $RUN $build/${t}_$mode $TASKS $SECONDS_"
      else
        (cd /tmp && $RUN "$build/${t}_$mode" "$TASKS" "$SECONDS_")
      fi
      r=$((r + 1))
    done
  done
done
