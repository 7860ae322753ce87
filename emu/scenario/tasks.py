"""Run a process's program as N tasks: will-it-scale's threads and processes modes.

`tasks = N` with `mode = "threads"` makes N copies of the process's threads in one mm;
with `mode = "processes"` N single-program processes. Task i is pinned to its own CPU
(the thread's first allowed CPU, or `cpus_from`, plus i) and, as each will-it-scale task
maps its own memory and makes its own mkstemp() file, gets its own copy of the
process's mappings and of the files they and its steps use (named NAME.i).
"""

import copy


def expand_tasks(sc: dict) -> None:
    procs, files = [], {f["name"]: f for f in sc["file"]}
    for proc in sc["process"]:
        n = proc["tasks"]
        if n == 1:
            procs.append(proc)
            continue
        used = _files_used(proc)
        for f in used:
            for i in range(n):
                sc["file"].append(dict(files[f], name=f"{f}.{i}"))
        if proc["mode"] == "threads":
            merged = dict(proc, tasks=1, mappings=[], threads=[])
            for i in range(n):
                merged["mappings"] += [_rename_mapping(m, i, used, True) for m in proc["mappings"]]
                merged["threads"] += [_task_thread(t, i, used, True) for t in proc["threads"]]
            procs.append(merged)
        else:
            for i in range(n):
                procs.append(dict(proc, name=f"{proc['name'] or 'proc'}.{i}", tasks=1,
                                  mappings=[_rename_mapping(m, i, used, False)
                                            for m in proc["mappings"]],
                                  threads=[_task_thread(t, i, used, False)
                                           for t in proc["threads"]]))
    sc["process"] = procs


def _files_used(proc: dict) -> set[str]:
    used = {m["file"] for m in proc["mappings"] if m["kind"] != "anon"}
    for t in proc["threads"]:
        for s in _walk(t["steps"]):
            if s["op"] in ("write", "truncate"):
                used.add(s["file"])
    return used


def _walk(steps: list[dict]):
    for s in steps:
        yield s
        yield from _walk(s["steps"])


def _name(name: str, i: int, rename: bool) -> str:
    return f"{name}.{i}" if rename and name else name


def _rename_mapping(m: dict, i: int, used: set, rename: bool) -> dict:
    out = dict(m, name=_name(m["name"], i, rename), overlay=_name(m["overlay"], i, rename))
    if m["file"] in used:
        out["file"] = f"{m['file']}.{i}"
    return out


def _task_thread(t: dict, i: int, used: set, rename: bool) -> dict:
    out = copy.deepcopy(t)
    base = t["cpus"][0] if t["cpus"] else t["cpus_from"]
    out["cpus"], out["cpus_from"] = [base + i], 0
    for h in out["hot"]:
        h["mapping"] = _name(h["mapping"], i, rename)
    for s in _walk(out["steps"]):
        s["mapping"] = _name(s["mapping"], i, rename)
        if s["file"] in used:
            s["file"] = f"{s['file']}.{i}"
    return out
