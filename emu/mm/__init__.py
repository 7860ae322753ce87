"""Memory-management models, named after the kernel files they imitate.

page_alloc (free lists, pcp, watermarks), memory (faults, zap), mmap/mprotect/madvise
(system calls), filemap (page cache, write), rmap (reverse map, try_to_unmap), vmscan
(LRU, kswapd, reclaim), migrate (batched migration), numa_balancing (tiering scans and
hint faults), tlb (arch/x86/mm/tlb.c: who gets an IPI, what a target flushes).
"""
