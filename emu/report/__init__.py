"""Rendering results for people: /proc/interrupts, perf stat, vmstat, CSV, the report, the
shootdown latency table, PNG plots; and reading results files back."""

# the --format choices of `show`, here so that parsing a command line does not import
# the renderers (every MPI rank parses it; only rank 0 renders)
FORMATS = ("report", "interrupts", "perf", "vmstat", "csv", "latency")
