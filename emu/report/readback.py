"""Reading a results file back, from this version of emu or the previous one (both write
schema emu-results/1; older files lack `runs[i].timeline` and the shootdown latency
fields). A rendering or plot that needs a field an old file lacks names it, exit 2."""

import json
import os

from emu.errors import EmuError
from emu.results import SCHEMA

MAX_RESULTS_BYTES = 256 << 20   # refused before reading: larger than any emu writes


def load_results(path: str) -> dict:
    try:
        size = os.stat(path).st_size
        if size > MAX_RESULTS_BYTES:
            raise EmuError(f"{size} bytes: larger than any results file emu writes", path)
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except OSError as exc:
        raise EmuError(f"cannot read results: {exc.strerror}", path) from None
    except json.JSONDecodeError as exc:
        raise EmuError(f"not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})",
                       path) from None
    except (UnicodeDecodeError, RecursionError):
        raise EmuError("not JSON text", path) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("runs"), list) or not doc["runs"]:
        raise EmuError("not an emu results file (no 'runs')", path)
    if doc.get("schema") != SCHEMA:
        raise EmuError(f"schema {doc.get('schema')!r}, this emu reads {SCHEMA!r}", path)
    return doc


def require(doc: dict, fields: tuple[str, ...], purpose: str, path: str) -> None:
    """Fail naming the first `runs[i].field` missing (an older file) that `purpose` needs."""
    for i, run in enumerate(doc["runs"]):
        for field in fields:
            if field not in run:
                raise EmuError(f"runs[{i}].{field} is missing (written by an older emu); "
                               f"{purpose} needs it", path)
