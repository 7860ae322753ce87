"""Generated scenario documents and --set overrides thrown at the loader (no MPI): it
either accepts them or refuses them with an EmuError, never any other exception.

Documents are mostly scenario-shaped (known sections and keys, values of any type) so
that the checks past the first level are reached too; they are written as TOML with
inline tables, which can express any nesting.
"""

import json
import math
from argparse import Namespace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from emu.cli import _prepare, parse
from emu.errors import EmuError
from emu.scenario.defaults import DEFAULTS, FILE, MAPPING, PROCESS, STEP, THREAD

FUZZ = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.integers(min_value=-2**70, max_value=2**70), st.integers(-3, 70),
    st.floats(allow_nan=True, allow_infinity=True), st.booleans(), st.text(max_size=12),
    st.sampled_from(["anon", "file", "rw", "touch", "munmap", "seq", "write", "${x}", "own"]))
anything = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=4)),
    max_leaves=12)


def _table(schema: dict, children: dict | None = None):
    """A table with some of `schema`'s keys (and sometimes a stray one)."""
    keys = list(schema) + ["bogus"]
    values = {k: children[k] if children and k in children else anything for k in keys}
    return st.fixed_dictionaries({}, optional=values)


def _or_anything(strategy):
    """Mostly the expected shape, sometimes any value at all."""
    return st.one_of(strategy, strategy, strategy, anything)


steps = _or_anything(st.lists(_table(STEP), max_size=3))
threads = _or_anything(st.lists(_table(THREAD, {"steps": steps}), max_size=3))
mappings = _or_anything(st.lists(_table(MAPPING), max_size=3))
processes = _or_anything(st.lists(_table(PROCESS, {"mappings": mappings, "threads": threads}),
                                  max_size=3))
documents = st.fixed_dictionaries({}, optional={
    **{section: _or_anything(_table(keys)) for section, keys in DEFAULTS.items()},
    "file": _or_anything(st.lists(_table(FILE), max_size=2)), "process": processes,
    "vars": st.dictionaries(st.text(max_size=4), anything, max_size=3), "stray": anything})
overrides = st.lists(st.text(max_size=30) | st.builds(
    lambda k, v: f"{k}={v}", st.sampled_from(["machine.dram_pages", "process.0.threads.0.count",
                                              "vars.x", "process.0.name.x", "scenario"]),
    st.text(max_size=12)), max_size=3)


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, (int, float, str)):
        return json.dumps(v)            # JSON numbers and strings are TOML ones too
    if isinstance(v, list):
        return "[" + ", ".join(map(toml_value, v)) + "]"
    return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(x)}" for k, x in v.items()) + "}"


ARGS = vars(parse(["run", "--cpus", "4"]))    # built once: argparse is the slow part


def _load(tmp_path: Path, text: str, sets: list[str]) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        _prepare(Namespace(**dict(ARGS, scenario=str(path), set=sets)), 2)
    except EmuError as exc:
        assert "\n" not in str(exc)


@FUZZ
@given(doc=documents, sets=overrides)
def test_generated_documents_are_accepted_or_refused_cleanly(tmp_path, doc, sets):
    _load(tmp_path, "\n".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in doc.items()),
          sets)


@FUZZ
@given(text=st.text(max_size=200))
def test_arbitrary_text_is_accepted_or_refused_cleanly(tmp_path, text):
    _load(tmp_path, text, [])
