"""The wire format between ranks: one msgpack-encoded event per MPI message, as bytes."""

import msgpack

_pack = msgpack.Packer(use_bin_type=True).pack


def encode(event: tuple, wall_s: float) -> bytes:
    """Encode an event plus its wall-clock send time (for measured one-way latency)."""
    return _pack((event, wall_s))


def decode(data) -> tuple[tuple, float]:
    """Decode bytes from the wire back into (event tuple, wall-clock send time)."""
    event, wall_s = msgpack.unpackb(data, raw=False, use_list=False, strict_map_key=False)
    return event, wall_s
