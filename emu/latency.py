"""The latency profile in simulated time: every shootdown's wait, from the request to
the last ack, by flush source, and how long tasks serving threads waited on flushes
(their own shootdowns, or another task's flush already in flight)."""


def percentile(sorted_values: list[int], q: float) -> int:
    """Nearest-rank percentile of an already sorted list (0 if empty)."""
    if not sorted_values:
        return 0
    return sorted_values[min(len(sorted_values) - 1, int(q * (len(sorted_values) - 1) + 0.5))]


class LatencyLog:
    def __init__(self):
        self.by_source: dict[str, list[int]] = {}
        self.user_wait_ns = 0

    def record(self, source: str, ns: int, user: bool) -> None:
        """One shootdown by `source` kept its initiator waiting `ns`."""
        self.by_source.setdefault(source, []).append(ns)
        self.waited(ns, user)

    def waited(self, ns: int, user: bool) -> None:
        """A task waited `ns` on a flush; counted when it serves a thread."""
        if user:
            self.user_wait_ns += ns


def summarise(by_source: dict[str, list[int]]) -> dict:
    """{source: {count, p50, p99, max, total}} plus "all" over every source."""
    out = {}
    everything: list[int] = []
    for source in sorted(by_source):
        values = sorted(by_source[source])
        everything += values
        out[source] = _summary(values)
    out["all"] = _summary(sorted(everything))
    return out


def cdf(by_source: dict[str, list[int]]) -> dict:
    """Percentiles 0..100 of every shootdown latency (for plots)."""
    values = sorted(v for vs in by_source.values() for v in vs)
    return {"p": list(range(101)), "ns": [percentile(values, p / 100) for p in range(101)]}


def _summary(values: list[int]) -> dict:
    return {"count": len(values), "p50": percentile(values, 0.5),
            "p99": percentile(values, 0.99), "max": values[-1] if values else 0,
            "total": sum(values)}
