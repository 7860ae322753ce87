"""Shootdown policies: where TLB shootdowns are sent, deferred and finally done.

`base.ShootdownPolicy` lists the hook points (the places the kernel calls them);
`vanilla` is x86 Linux, `luf` the Lazy Unmap Flush patch series, `unsafe` defers every
flush and never does it (to prove the oracle), `ideal` the lower bound.
"""

import importlib

from emu.errors import EmuError

POLICIES = {
    "vanilla": "emu.policy.vanilla:VanillaPolicy",
    "luf": "emu.policy.luf:LufPolicy",
    "unsafe": "emu.policy.unsafe:UnsafePolicy",
    "ideal": "emu.policy.ideal:IdealPolicy",
}


def check_policy(name: str) -> None:
    if name not in POLICIES:
        raise EmuError(f"unknown policy '{name}' (one of {', '.join(POLICIES)})")


def make_policy(name: str, kernel):
    check_policy(name)
    module, cls = POLICIES[name].split(":")
    return getattr(importlib.import_module(module), cls)(kernel)
