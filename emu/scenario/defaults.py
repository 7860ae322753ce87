"""Every scenario key with its default. Figures carry their source (docs/cost-model.md).

A scenario file may set any of these; a key not listed here is an error. Processes,
files and threads are lists of tables whose own keys are listed in PROCESS, MAPPING,
THREAD, STEP and FILE.
"""

DEFAULTS = {
    "scenario": {
        "name": "",
        "description": "",
        "duration_ns": 1_000_000_000,   # hard stop of simulated time
        "quantum_ns": 2_000,            # window; see docs/design.md "Time and windows"
        "seed": 1,
        "scale": 1,                     # grow memory, files, mappings and NUMA scan by this
    },
    "machine": {
        "cpus": 0,                      # 0: one CPU per MPI rank
        "dram_pages": 16384,
        "cxl_pages": 0,                 # a CPU-less CXL node when > 0
        "dtlb_entries": 96, "dtlb_ways": 6,
        "itlb_entries": 256, "itlb_ways": 8,
        "stlb_entries": 2048, "stlb_ways": 16,
        "pcid_slots": 6,                # TLB_NR_DYN_ASIDS
    },
    "cost": {
        "invlpg_ns": 100,               # x86 tlb.c comment on tlb_single_page_flush_ceiling
        "full_flush_ns": 48,            # ~100 cycles CR3 reload (LKML 2015) at 2.1 GHz
        "ipi_latency_ns": 260,          # (1.44-0.66 us)/3, LKML 2019 shootdown figures
        "ipi_handler_ns": 260,          # same split: send, handle, ack
        "ipi_per_target_ns": 65,        # (1.57-1.44 us)/2 extra targets, LKML 2019
        "page_walk_ns": 30,             # assumed: walk hitting paging-structure caches
        "dram_access_ns": 100,          # assumed, typical DRAM load-to-use latency
        "cxl_access_ns": 250,           # CXL ~2.5x DRAM (public CXL measurements)
        "page_fault_ns": 1_000,         # assumed minor fault entry/exit and handling
        "syscall_ns": 300,              # assumed syscall entry/exit + VMA work
        "context_switch_ns": 1_500,     # assumed
        "disk_latency_ns": 80_000,      # assumed NVMe read latency
        "disk_page_ns": 1_365,          # 4 KiB at 3 GB/s, assumed NVMe bandwidth
        "migrate_copy_ns": 400,         # 4 KiB at ~10 GB/s copy
        "zap_pte_ns": 297,              # measured: page_fault3's munmaps of 32,768 dirty
                                        # shmem pages (docs/real-kernel.md)
        "free_page_ns": 127,            # measured: page_fault1/2's of anonymous pages,
                                        # 424 ns a page, less zap_pte_ns
        "tlb_single_page_flush_ceiling": 33,  # arch/x86/mm/tlb.c
    },
    "kernel": {
        "sched_base_slice_ns": 750_000,  # sysctl_sched_base_slice (EEVDF)
        "fault_around_pages": 16,        # fault_around_bytes = 64 KiB
        "readahead_pages": 32,           # VM_READAHEAD_PAGES (128 KiB)
        "swap": False,
        "init_on_free": False,
        "kasan": False,                  # CONFIG_KASAN poisoning freed pages (LUF off)
        "luf_test_disable": "",          # TEST ONLY: LUF flush points to skip (unsafe)
        "min_free_kbytes": 0,            # 0: computed as init_per_zone_wmark_min() does
        "watermark_scale_factor": 10,
        "swap_cluster_max": 32,          # SWAP_CLUSTER_MAX: reclaim batch
        "demotion": False,
        "numa_balancing": False,         # NUMA_BALANCING_MEMORY_TIERING
        "numa_scan_period_ns": 1_000_000_000,   # task_numa_work scan period (min 1 s)
        "numa_scan_size_pages": 65536,           # numa_balancing_scan_size_mb = 256
        "numa_hot_threshold_ns": 1_000_000_000,  # numa_balancing_hot_threshold_ms = 1000
        "numa_promote_rate_limit_mbps": 65536,   # numa_balancing_promote_rate_limit_MBps
        "migrate_batch": 512,            # NR_MAX_BATCHED_MIGRATION
        "kswapd_interval_ns": 0,         # 0: kswapd runs only when woken
    },
    "migrate": {                         # the migrate scenario's periodic mover (off: 0)
        "interval_ns": 0,
        "pages": 0,
    },
    "oracle": {"enabled": True, "max_listed": 20},
    "debug": {"fail_rank": -1, "fail_at_ns": 0},
}

FILE = {
    "name": "",
    "pages": 0,
    "tmpfs": False,          # in tmpfs (mm/shmem.c): no disk reads, no readahead,
                             # swap-backed (reclaim keeps its pages while swap is off)
}

PROCESS = {
    "name": "",
    "mappings": [],
    "threads": [],
    "tasks": 1,              # run the program as this many tasks (will-it-scale's -t)...
    "mode": "threads",       # ...threads of one process, or single-threaded "processes"
}

MAPPING = {
    "name": "",
    "kind": "anon",          # anon | file | code (file-backed, executable)
    "file": "",
    "pages": 0,
    "prot": "rw",            # r, rw, rx
    "shared": False,         # MAP_SHARED (file mappings)
    "mapped": True,          # mapped at start; False: a later mmap step maps it
    "populate": False,       # MAP_POPULATE: fault every page in at start
    "overlay": "",           # reuse another mapping's address range (for MAP_FIXED over it)
}

THREAD = {
    "count": 1,              # 0: one thread on each allowed CPU
    "cpus": [],              # allowed CPUs (taskset); empty: all. Threads are spread over them.
    "cpus_from": 0,          # with cpus empty: allowed CPUs are cpus_from .. last CPU
    "repeat": 1,             # times the step list runs; 0 with daemon or iterations: no limit
    "daemon": False,         # runs until all non-daemon threads exit
    "iterations": 0,         # exit once the count steps counted this many (0: no limit)
    "hot": [],               # pages used continuously (HOT entries): code, stack, hot data
    "steps": [],
}

STEP = {
    "op": "",                # touch (or spin), mmap, munmap, mprotect, madvise, write, truncate,
                             # sleep, kalloc, loop, count
    "mapping": "",
    "file": "",
    "pages": 0,              # pages touched / written / kalloc'ed / (un)mapped, protected or
                             # advised; 0: the whole mapping (from offset) or my part
    "offset": 0,             # first page within the mapping or file
    "cursor": False,         # mmap/munmap/mprotect/madvise: the range moves on by `pages`
                             # each time the step runs, wrapping at the mapping's end
    "repeat": 1,             # loop: times its steps run
    "steps": [],             # loop: the steps of the loop body
    "pattern": "seq",        # seq | random | zipf
    "zipf_a": 1.2,
    "part": "all",           # all | thread: split the mapping between the threads
    "access": "read",        # read | write | exec | mix
    "write_fraction": 0.0,   # for access = mix
    "work_ns": 0,            # compute between two touches
    "prot": "",              # for mprotect
    "advice": "dontneed",    # for madvise
    "fixed": False,          # mmap MAP_FIXED over whatever is mapped
    "ns": 0,                 # for sleep
    "tag": "",               # a label the report uses (e.g. "token")
    "segv": "error",         # touch of an unmapped address: error | skip (a SIGSEGV handler)
}

HOT = {                      # an entry of a thread's hot working set
    "mapping": "",
    "offset": 0,
    "pages": 0,              # 0: the whole mapping from offset, or my part
    "part": "all",           # all | thread: split the mapping between the threads
    "access": "read",        # read | write | exec
}

OPS = ("touch", "spin", "mmap", "munmap", "mprotect", "madvise", "write", "truncate", "sleep",
       "kalloc", "loop", "count")
RANGE_OPS = ("mmap", "munmap", "mprotect", "madvise")   # take offset, pages and cursor
