"""Rendering results for people: /proc/interrupts, perf stat, vmstat, CSV, the report."""
