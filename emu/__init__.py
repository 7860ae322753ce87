"""emu: a multiprocess parallel emulator of Linux TLB shootdowns (vanilla x86 and LUF)."""

__version__ = "0.1.0"
