"""The simulated CPU: TLBs, PCID slots, lazy TLB mode, scheduler, IPI handler."""
