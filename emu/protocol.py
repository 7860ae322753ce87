"""Event kinds exchanged between components, and the layout of published state.

Kinds are small integers to keep MPI messages short. Each message carries one event;
an IPI and its acknowledgement are one message each, so a shootdown to 40 CPUs is 40
messages out and 40 back, exactly as many as the simulated IPIs.
"""

# CPU <-> CPU (and the coordinator acting for kswapd's CPU)
IPI = 1            # (token, mm, start, npages, new_gen, freed_tables, ugen) flush request
ACK = 2            # (token,) flush done
# CPU -> coordinator
FAULT = 10         # (tid, vpage, access)
SYSCALL = 11       # (tid, op, args)
SHOOTDOWN_DONE = 12  # (token,)
YOUNG = 13         # (vpages,) accessed bits set by page walks since the last report
THREAD_EXIT = 14   # (tid,)
# coordinator -> CPU
REPLY = 20         # (tid, result)
IO_WAIT = 21       # (tid,) the thread sleeps in I/O until its REPLY
DO_SHOOTDOWN = 22  # (token, targets, flush) the CPU must send these IPIs and report back
LOCAL_FLUSH = 23   # (mm, start, npages, new_gen) flush on the initiating CPU itself
HOLDS_QUERY = 24   # (token, pfns) ideal policy only: which of these frames do you cache?
# CPU -> coordinator (ideal policy only; global knowledge, not an IPI)
HOLDS_REPLY = 15   # (token, pfns held)

MEASURED_KINDS = frozenset({IPI, ACK})

# Published per-component slots (visible to all one window later)
PUB_LOADED_MM = 0    # mm id loaded on the CPU (-1: init_mm)
PUB_LAZY = 1         # cpu_tlbstate_shared.is_lazy
PUB_CPUMASK = 2      # bit m set: this CPU is in mm_cpumask(mm m)
PUB_LIVE = 3         # non-daemon threads not yet exited on this CPU
PUB_PROGRESS = 4     # work units its threads finished (progress display only)
PUB_SLOTS = 5

FULL = -1            # npages value meaning TLB_FLUSH_ALL
NO_MM = -1           # flush info mm for a batched (all-mm) flush
