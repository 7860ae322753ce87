"""Components saved as data and loaded into freshly built ones, on any rank.

A component's state is its attributes, pickled, except the objects it shares with the
rest of its rank (the engine, the page-table replica, the layout, the scenario): those
are saved as names and resolved to the new rank's own objects when loaded, so a CPU can
be saved on one rank and continue on another.
"""

import io
import pickle


def _shared_ids(shared: dict[str, object]) -> dict[int, tuple]:
    """id -> name (a path for the parts of dict and list trees) of every shared object."""
    ids: dict[int, tuple] = {}

    def walk(obj, path: tuple) -> None:
        ids[id(obj)] = path
        if isinstance(obj, dict):
            for key, value in obj.items():
                if isinstance(value, (dict, list)):
                    walk(value, (*path, key))
        elif isinstance(obj, list):
            for i, value in enumerate(obj):
                if isinstance(value, (dict, list)):
                    walk(value, (*path, i))
    for name, obj in shared.items():
        if obj is not None:
            walk(obj, (name,))
    return ids


def save(state: dict, shared: dict[str, object]) -> bytes:
    """`state` (e.g. a component's __dict__) as bytes, with `shared` objects by name."""
    ids = _shared_ids(shared)
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.persistent_id = lambda obj: ids.get(id(obj))
    pickler.dump(state)
    return out.getvalue()


def load(data: bytes, shared: dict[str, object]) -> dict:
    """The state `save` wrote, its shared objects resolved among `shared`."""
    def resolve(path: tuple):
        obj = shared.get(path[0])        # e.g. no replica on a rank without threads
        for key in path[1:]:
            obj = obj[key]
        return obj
    unpickler = pickle.Unpickler(io.BytesIO(data))
    unpickler.persistent_load = resolve
    return unpickler.load()


def restore(component, data: bytes, shared: dict[str, object]) -> None:
    """Give a freshly built `component` the state saved in `data`."""
    component.__dict__.update(load(data, shared))
