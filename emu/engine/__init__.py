"""The discrete-event engine: components, windows, MPI transport. Knows nothing of memory."""
