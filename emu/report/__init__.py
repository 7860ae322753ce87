"""Rendering results for people: /proc/interrupts, perf stat, vmstat, CSV, the report, the
shootdown latency table, PNG plots; and reading results files back."""
