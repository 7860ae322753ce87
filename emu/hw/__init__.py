"""Hardware models: TLB arrays and the cost model."""
