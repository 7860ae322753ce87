"""Event kinds exchanged between components, and the layout of published state.

Kinds are small integers to keep MPI messages short. Each message carries one event;
an IPI and its acknowledgement are one message each, so a shootdown to 40 CPUs is 40
messages out and 40 back, exactly as many as the simulated IPIs.
"""

# coordinator (acting for the initiating CPU) <-> target CPU
IPI = 1            # (token, initiator, mm, start, npages, new_gen, sent, condition)
ACK = 2            # (token, taken) flush done, stamped from the IPI's arrival time;
                   # taken 0: the kernel would not have sent it (Cpu._unneeded_ipi)
# CPU -> coordinator
FAULT = 10         # (tid, vpage, access, cpu, segv_skip, resume_ns: Cpu.next_request_ns)
SYSCALL = 11       # (tid, op, args, cpu)
YOUNG = 13         # (vpages,) accessed bits set by page walks since the last report
THREAD_EXIT = 14   # (tid, mm)
HOLDS_REPLY = 15   # (token, pfns held, cpu) ideal policy only: global knowledge, not an IPI
SWITCH_FLUSH = 16  # (tid, prev_mm, cpu) finish_task_switch() after idle borrowed prev_mm:
                   # luf_flush_mm(prev_mm) (LUF v12 patch 19); sent only when the
                   # coordinator published prev_mm as having CPUs not yet flushed
# coordinator -> CPU
REPLY = 20         # (tid, result)
IO_WAIT = 21       # (tid,) the thread sleeps in I/O until its REPLY
LOCAL_FLUSH = 23   # (mm, start, npages, new_gen) flush on the initiating CPU itself
HOLDS_QUERY = 24   # (token, pfns) ideal policy only: which of these frames do you cache?

MEASURED_KINDS = frozenset({IPI, ACK})

# Published per-component slots, read by everyone during the next window. A CPU also
# publishes its TLB state (loaded mm, lazy flag, mm_cpumask bits) as of the previous
# publication and every change since, with its simulated time, so an initiator can
# replay what the CPU was doing at the time of its flush.
PUB_LOADED_MM = 0    # mm id loaded on the CPU now (-1: init_mm)
PUB_LAZY = 1         # cpu_tlbstate_shared.is_lazy now
PUB_CPUMASK = 2      # bit m set: in mm_cpumask(mm m) now
PUB_LIVE = 3         # non-daemon threads not yet exited on this CPU
PUB_PROGRESS = 4     # work units its threads finished (progress display only)
PUB_PREV_STATE = 5   # packed (mm, lazy) at the previous publication (see pack_tlbstate)
PUB_PREV_MASK = 6    # mm_cpumask bits at the previous publication
PUB_NCHANGES = 7     # changes since then (only the first PUB_MAX_CHANGES are listed)
PUB_T_LAST = 8       # time of the last change
PUB_CLOCK = 9        # the CPU's simulated time at publication: its history ends there
PUB_CHANGES = 10     # PUB_MAX_CHANGES triples (time, packed state, mm_cpumask bits)
PUB_MAX_CHANGES = 8
PUB_SLOTS = PUB_CHANGES + 3 * PUB_MAX_CHANGES
# The coordinator's row
PUB_LUF_PENDING_MMS = 0   # bit m set: mm m's LUF batch has CPUs not yet done (luf only)


def pack_tlbstate(mm: int, lazy: bool) -> int:
    """(mm, lazy) as one int; works on numpy arrays too (Cpu.republish)."""
    return (mm + 1) * 2 + lazy


def unpack_tlbstate(packed: int) -> tuple[int, int]:
    return packed // 2 - 1, packed & 1


FULL = -1            # npages value meaning TLB_FLUSH_ALL
NO_MM = -1           # flush info mm for a batched (all-mm) flush
