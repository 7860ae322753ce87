"""Vanilla x86 Linux: every batched unmap is flushed before the pages are freed."""

from emu.policy.base import ShootdownPolicy


class VanillaPolicy(ShootdownPolicy):
    name = "vanilla"
