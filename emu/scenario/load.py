"""Load a scenario (built-in name or TOML file), apply --set overrides, validate.

Every problem is an EmuError naming the file, the line where it can be found and the
key, so `python -m emu` can print one line and exit with status 2.
"""

import copy
import re
import tomllib
from pathlib import Path

from emu.errors import EmuError
from emu.scenario.defaults import DEFAULTS, FILE, HOT, MAPPING, OPS, PROCESS, RANGE_OPS, STEP, THREAD
from emu.scenario.tasks import expand_tasks

BUILTIN = Path(__file__).parent / "builtin"   # not importlib.resources: it imports zipfile,
                                              # tempfile, shutil, bz2, lzma (start-up)
MAX_FILE_BYTES = 1 << 20    # scenario files are a few KiB; refuse before reading more
MAX_INT = 1 << 62           # times and sizes live in int64 slots (INF is 1 << 62)


def builtin_names() -> list[str]:
    return sorted(p.name[:-5] for p in BUILTIN.iterdir() if p.name.endswith(".toml"))


def builtin_description(name: str) -> str:
    data = tomllib.loads((BUILTIN / f"{name}.toml").read_text())
    return data.get("scenario", {}).get("description", "").strip()


def _line_of(text: str, key: str) -> int | None:
    """The first line that assigns or opens `key` (for error messages)."""
    last = key.split(".")[-1]
    pat = re.compile(rf"^\s*(\[+\s*)?([\w.-]*\.)?{re.escape(last)}\s*(=|\]|\.)", re.M)
    m = pat.search(text)
    return text.count("\n", 0, m.start()) + 1 if m else None


class _Where:
    def __init__(self, path: str, text: str):
        self.path, self.text = path, text

    def __call__(self, key: str) -> str:
        line = _line_of(self.text, key)
        return f"{self.path}:{line}: key '{key}'" if line else f"{self.path}: key '{key}'"


def load_scenario(name_or_path: str, overrides: list[str] = ()) -> dict:
    """Return the validated scenario dict (defaults filled in)."""
    if name_or_path.endswith(".toml") or "/" in name_or_path:
        text, shown = _read(Path(name_or_path)), name_or_path
    else:
        if name_or_path not in builtin_names():
            raise EmuError(f"unknown scenario '{name_or_path}' "
                           f"(built-ins: {', '.join(builtin_names())})")
        text, shown = (BUILTIN / f"{name_or_path}.toml").read_text(), f"{name_or_path}.toml"
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EmuError(f"malformed TOML: {exc}", shown) from None
    except RecursionError:
        raise EmuError("malformed TOML: nested too deeply", shown) from None
    where = _Where(shown, text)
    for item in overrides:
        _apply_override(raw, item)
    variables = raw.pop("vars", {})
    if not isinstance(variables, dict):
        raise EmuError("expected a table", where("vars"))
    for key in ("file", "process"):
        raw[key] = _substitute(raw.get(key, []), variables, where)
    scenario = _validate(raw, where)
    expand_tasks(scenario)
    scenario["vars"] = variables
    _apply_scale(scenario, where)
    if not scenario["scenario"]["name"]:
        scenario["scenario"]["name"] = Path(shown).stem
    return scenario


def _read(path: Path) -> str:
    """The file's text, refused before reading if it is not a small UTF-8 file."""
    try:
        size = path.stat().st_size
        if not path.is_file():
            raise EmuError(f"not a scenario file: {path}")
        if size > MAX_FILE_BYTES:
            raise EmuError(f"{size} bytes: a scenario file has at most {MAX_FILE_BYTES}",
                           str(path))
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EmuError(f"no such scenario file: {path}") from None
    except OSError as exc:
        raise EmuError(f"cannot read: {exc.strerror}", str(path)) from None
    except UnicodeDecodeError as exc:
        raise EmuError(f"not UTF-8 text (byte {exc.start})", str(path)) from None


_VAR = re.compile(r"\$\{(\w+)\}")


def _substitute(node, variables: dict, where):
    """Replace ${name} in string values with [vars] entries (e.g. the pair sibling)."""
    if isinstance(node, dict):
        return {k: _substitute(v, variables, where) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, variables, where) for v in node]
    if isinstance(node, str):
        whole = _VAR.fullmatch(node)
        if whole and whole.group(1) in variables:
            return variables[whole.group(1)]   # keeps the variable's type
        def repl(m):
            if m.group(1) not in variables:
                raise EmuError(f"unknown variable '${{{m.group(1)}}}'", where("vars"))
            return str(variables[m.group(1)])
        return _VAR.sub(repl, node)
    return node


def _parse_value(text: str):
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except (tomllib.TOMLDecodeError, RecursionError):
        return text  # a bare string


def _apply_override(raw: dict, item: str) -> None:
    """--set a.b.0.c=value: dotted keys, list elements by index."""
    if "=" not in item:
        raise EmuError(f"--set expects key=value, got '{item}'")
    key, value = item.split("=", 1)
    parts = key.strip().split(".")
    node = raw
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, (dict, list)):
            raise EmuError(f"--set {key}: '{'.'.join(parts[:i])}' is not a table or list")
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise EmuError(f"--set {key}: no element {part} in '{'.'.join(parts[:i])}'")
            node = node[int(part)]
        else:
            if part not in node:
                section = DEFAULTS.get(part) if i == 0 else None
                if section is None and not (i == 0 and part == "vars"):
                    raise EmuError(f"--set {key}: unknown key '{'.'.join(parts[:i + 1])}'")
                node[part] = {}
            node = node[part]
    last = parts[-1]
    if not isinstance(node, (dict, list)):
        raise EmuError(f"--set {key}: '{'.'.join(parts[:-1])}' is not a table or list")
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise EmuError(f"--set {key}: no element {last}")
        node[int(last)] = _parse_value(value)
    else:
        node[last] = _parse_value(value)


def _typed(value, default, key: str, where):
    """Check a value against its default's type. `where(key)` (which searches the file
    for the key's line) is called only for an error: every key is validated."""
    problem = _type_problem(value, default)
    if problem:
        raise EmuError(problem, where(key))
    return float(value) if isinstance(default, float) else value


def _type_problem(value, default) -> str | None:
    """What is wrong with `value` for a key whose default is `default`, or None."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            return f"expected true or false, got {value!r}"
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected an integer, got {value!r}"
        if value < 0:
            return f"must not be negative, got {value}"
        if value > MAX_INT:
            return f"must be at most 2**62, got {value}"
    elif isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"expected a number, got {value!r}"
        if not 0 <= value <= MAX_INT:   # also refuses nan (no comparison holds)
            return f"must be a number from 0 to 2**62, got {value}"
    elif isinstance(default, str):
        if not isinstance(value, str):
            return f"expected a string, got {value!r}"
    elif isinstance(default, list):
        if not isinstance(value, list):
            return f"expected a list, got {value!r}"
    return None


def _table(raw, schema: dict, prefix: str, where) -> dict:
    if not isinstance(raw, dict):
        raise EmuError("expected a table", where(prefix))
    out = copy.deepcopy(schema)
    for key, value in raw.items():
        full = f"{prefix}.{key}" if prefix else key
        if key not in schema:
            raise EmuError("unknown key", where(full))
        if isinstance(schema[key], dict):
            out[key] = _table(value, schema[key], full, where)
        else:
            out[key] = _typed(value, schema[key], full, where)
    return out


def _array(raw: dict, key: str, where) -> list:
    value = raw.get(key, [])
    if not isinstance(value, list):
        raise EmuError(f"expected an array of tables ([[{key}]])", where(key))
    return value


def _validate(raw: dict, where) -> dict:
    top = {k: v for k, v in raw.items() if k not in ("file", "process")}
    scenario = _table(top, DEFAULTS, "", where)
    files = [_table(f, FILE, f"file.{i}", where) for i, f in enumerate(_array(raw, "file", where))]
    procs = []
    for i, p in enumerate(_array(raw, "process", where)):
        proc = _table(p, PROCESS, f"process.{i}", where)
        proc["mappings"] = [_table(m, MAPPING, f"process.{i}.mappings.{j}", where)
                            for j, m in enumerate(proc["mappings"])]
        threads = []
        for j, t in enumerate(proc["threads"]):
            th = _table(t, THREAD, f"process.{i}.threads.{j}", where)
            if not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < MAX_INT
                       for c in th["cpus"]):
                raise EmuError("expected a list of CPU numbers",
                               where(f"process.{i}.threads.{j}.cpus"))
            th["steps"] = _steps(th["steps"], f"process.{i}.threads.{j}", where)
            th["hot"] = [_table(h, HOT, f"process.{i}.threads.{j}.hot.{k}", where)
                         for k, h in enumerate(th["hot"])]
            threads.append(th)
        proc["threads"] = threads
        procs.append(proc)
    scenario["file"], scenario["process"] = files, procs
    _check_references(scenario, where)
    return scenario


def _steps(raw, prefix: str, where) -> list[dict]:
    """A step list; a loop step's body is a step list of its own."""
    if not isinstance(raw, list):
        raise EmuError("expected a list of steps", where(f"{prefix}.steps"))
    steps = [_table(s, STEP, f"{prefix}.steps.{k}", where) for k, s in enumerate(raw)]
    for k, s in enumerate(steps):
        s["steps"] = _steps(s["steps"], f"{prefix}.steps.{k}", where)
    return steps


SCALED_TIME = ("numa_scan_period_ns", "numa_hot_threshold_ns")


def _apply_scale(sc: dict, where) -> None:
    """scenario.scale = N grows the machine toward the real sizes: memory, files and
    mappings N times larger; the NUMA scanner's size, period and hot threshold with them
    (the run streams N times more data, so it lasts about N times longer)."""
    n = sc["scenario"]["scale"]
    if n < 1:
        raise EmuError("must be at least 1", where("scenario.scale"))
    if n == 1:
        return
    for key in ("dram_pages", "cxl_pages"):
        sc["machine"][key] *= n
    for f in sc["file"]:
        f["pages"] *= n
    for p in sc["process"]:
        for m in p["mappings"]:
            m["pages"] *= n
    sc["kernel"]["numa_scan_size_pages"] *= n
    for key in SCALED_TIME:
        sc["kernel"][key] *= n


def _check_references(sc: dict, where) -> None:
    """Cross-key checks: names exist, sizes positive, ops known."""
    if sc["scenario"]["quantum_ns"] <= 0:
        raise EmuError("must be positive", where("scenario.quantum_ns"))
    if sc["machine"]["dram_pages"] <= 0:
        raise EmuError("must be positive", where("machine.dram_pages"))
    for tlb in ("dtlb", "itlb", "stlb"):
        entries, ways = sc["machine"][f"{tlb}_entries"], sc["machine"][f"{tlb}_ways"]
        if ways <= 0 or entries <= 0 or entries % ways:
            raise EmuError(f"{entries} entries cannot be split into sets of {ways} ways",
                           where(f"machine.{tlb}_ways"))
    if sc["machine"]["pcid_slots"] <= 0:
        raise EmuError("must be positive", where("machine.pcid_slots"))
    for point in filter(None, sc["kernel"]["luf_test_disable"].split(",")):
        from emu.policy.luf import TEST_POINTS  # only if used (start-up)

        if point not in TEST_POINTS:
            raise EmuError(f"unknown LUF flush point '{point}' (one of {', '.join(TEST_POINTS)})",
                           where("kernel.luf_test_disable"))
    files = {f["name"]: f for f in sc["file"]}
    for i, f in enumerate(sc["file"]):
        if f["pages"] <= 0:
            raise EmuError("must be positive", where(f"file.{i}.pages"))
    if not sc["process"]:
        raise EmuError("a scenario needs at least one [[process]]", where("process"))
    for i, p in enumerate(sc["process"]):
        maps = {m["name"]: m for m in p["mappings"]}
        for j, m in enumerate(p["mappings"]):
            key = f"process.{i}.mappings.{j}"
            if m["pages"] <= 0:
                raise EmuError("must be positive", where(f"{key}.pages"))
            if m["kind"] not in ("anon", "file", "code"):
                raise EmuError(f"unknown kind '{m['kind']}'", where(f"{key}.kind"))
            if m["kind"] != "anon" and m["file"] not in files:
                raise EmuError(f"unknown file '{m['file']}'", where(f"{key}.file"))
            if m["prot"] not in ("r", "rw", "rx"):
                raise EmuError(f"unknown prot '{m['prot']}'", where(f"{key}.prot"))
            if m["overlay"]:
                under = maps.get(m["overlay"])
                if under is None or under is m or under["overlay"] or under["pages"] < m["pages"]:
                    raise EmuError(f"overlay '{m['overlay']}' must name an earlier, larger, "
                                   "non-overlay mapping", where(f"{key}.overlay"))
        if p["mode"] not in ("threads", "processes"):
            raise EmuError(f"unknown mode '{p['mode']}' (threads or processes)",
                           where(f"process.{i}.mode"))
        if p["tasks"] < 1:
            raise EmuError("must be at least 1", where(f"process.{i}.tasks"))
        for j, t in enumerate(p["threads"]):
            key = f"process.{i}.threads.{j}"
            if t["repeat"] == 0 and not (t["daemon"] or t["iterations"]):
                raise EmuError("0 (no limit) needs daemon = true or iterations > 0",
                               where(f"{key}.repeat"))
            _check_steps(t["steps"], f"{key}", maps, files, where)
            for k, h in enumerate(t["hot"]):
                if h["mapping"] not in maps:
                    raise EmuError(f"unknown mapping '{h['mapping']}'",
                                   where(f"{key}.hot.{k}.mapping"))
                if h["access"] not in ("read", "write", "exec"):
                    raise EmuError(f"unknown access '{h['access']}' (read, write or exec)",
                                   where(f"{key}.hot.{k}.access"))
                if h["part"] not in ("all", "thread"):
                    raise EmuError(f"unknown part '{h['part']}' (all or thread)",
                                   where(f"{key}.hot.{k}.part"))
                _check_range(dict(h, op="munmap", cursor=False), maps[h["mapping"]],
                             f"{key}.hot.{k}", where)


def _check_steps(steps: list[dict], prefix: str, maps: dict, files: dict, where) -> None:
    for k, s in enumerate(steps):
        key = f"{prefix}.steps.{k}"
        if s["op"] not in OPS:
            raise EmuError(f"unknown op '{s['op']}' (one of {', '.join(OPS)})", where(f"{key}.op"))
        if s["op"] in ("touch", "spin") + RANGE_OPS:
            if s["mapping"] not in maps:
                raise EmuError(f"unknown mapping '{s['mapping']}'", where(f"{key}.mapping"))
            _check_range(s, maps[s["mapping"]], key, where)
        elif s["cursor"]:
            raise EmuError(f"cursor applies to {', '.join(RANGE_OPS)} steps", where(f"{key}.cursor"))
        if s["op"] in ("write", "truncate") and s["file"] not in files:
            raise EmuError(f"unknown file '{s['file']}'", where(f"{key}.file"))
        if s["op"] == "mprotect" and s["prot"] not in ("r", "rw", "rx", "none"):
            raise EmuError(f"unknown prot '{s['prot']}'", where(f"{key}.prot"))
        if s["op"] == "madvise" and s["advice"] not in ("dontneed", "pageout"):
            raise EmuError(f"unknown advice '{s['advice']}' (dontneed or pageout)",
                           where(f"{key}.advice"))
        if s["pattern"] not in ("seq", "random", "zipf"):
            raise EmuError(f"unknown pattern '{s['pattern']}'", where(f"{key}.pattern"))
        if s["access"] not in ("read", "write", "exec", "mix"):
            raise EmuError(f"unknown access '{s['access']}'", where(f"{key}.access"))
        if s["op"] == "loop":
            if s["repeat"] < 1:
                raise EmuError("a loop runs at least once", where(f"{key}.repeat"))
            if not s["steps"]:
                raise EmuError("a loop needs steps", where(f"{key}.steps"))
            _check_steps(s["steps"], key, maps, files, where)
        elif s["steps"]:
            raise EmuError("only a loop step has steps", where(f"{key}.steps"))


def _check_range(s: dict, m: dict, key: str, where) -> None:
    """offset and pages must lie within the mapping; a cursor must wrap exactly."""
    size = m["pages"]
    if s["offset"] >= size:
        raise EmuError(f"offset {s['offset']} is outside mapping '{m['name']}' ({size} pages)",
                       where(f"{key}.offset"))
    if s["op"] in RANGE_OPS and s["offset"] + s["pages"] > size:
        raise EmuError(f"offset {s['offset']} + pages {s['pages']} exceeds mapping "
                       f"'{m['name']}' ({size} pages)", where(f"{key}.pages"))
    span = size - s["offset"]
    if s["cursor"] and (s["pages"] == 0 or span % s["pages"]):
        raise EmuError(f"a cursor needs pages dividing the {span} pages from offset "
                       f"{s['offset']} to the end of '{m['name']}'", where(f"{key}.pages"))
