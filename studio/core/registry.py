"""The registry of node types, and the entry-point group through which node packs add theirs.

A node pack is any installed distribution that declares, in its ``pyproject.toml``::

    [project.entry-points."model_studio.nodes"]
    my_pack = "my_pack.nodes:NODE_TYPES"

The entry point may name a NodeType subclass, an iterable of them, or a callable that takes the
registry and registers what it likes. A pack that fails to load is reported, not fatal.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Iterable, Iterator

from studio.core.node_type import NodeType

ENTRY_POINT_GROUP = "model_studio.nodes"


class RegistryError(Exception):
    pass


class Registry:
    def __init__(self) -> None:
        self._types: dict[str, NodeType] = {}
        #: one line per node pack that could not be loaded
        self.pack_errors: list[str] = []

    def register(self, node_type: type[NodeType] | NodeType) -> NodeType:
        instance = node_type() if isinstance(node_type, type) else node_type
        if not isinstance(instance, NodeType):
            raise RegistryError(f"{node_type!r} is not a NodeType")
        type_id = getattr(instance, "type_id", None)
        if not isinstance(type_id, str) or not type_id:
            raise RegistryError(f"{type(instance).__name__} has no type_id")
        if type_id in self._types:
            other = type(self._types[type_id])
            raise RegistryError(
                f"node type id {type_id!r} is taken by {other.__module__}.{other.__qualname__}")
        self._types[type_id] = instance
        return instance

    def get(self, type_id: str) -> NodeType | None:
        return self._types.get(type_id)

    def __getitem__(self, type_id: str) -> NodeType:
        return self._types[type_id]

    def __contains__(self, type_id: object) -> bool:
        return type_id in self._types

    def __iter__(self) -> Iterator[NodeType]:
        return iter(sorted(self._types.values(), key=lambda t: t.type_id))

    def __len__(self) -> int:
        return len(self._types)

    def type_ids(self) -> list[str]:
        return sorted(self._types)

    def by_category(self) -> dict[str, list[NodeType]]:
        groups: dict[str, list[NodeType]] = {}
        for t in self:
            groups.setdefault(t.category, []).append(t)
        return {c: sorted(ts, key=lambda t: t.title.lower()) for c, ts in sorted(groups.items())}

    def add_pack(self, source: object, name: str) -> None:
        """Register what one pack exports: a NodeType class, an iterable of them, or a callable."""
        if isinstance(source, type) and issubclass(source, NodeType):
            self.register(source)
        elif isinstance(source, Iterable) and not isinstance(source, str | bytes):
            for item in source:
                self.register(item)
        elif callable(source):
            register: Callable[[Registry], object] = source
            register(self)
        else:
            raise RegistryError(f"node pack {name!r} exports {type(source).__name__}, not node types")

    def load_entry_points(self) -> None:
        for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            try:
                self.add_pack(ep.load(), ep.name)
            except Exception as exc:  # a broken pack must not take the studio down
                self.pack_errors.append(f"node pack {ep.name!r} ({ep.value}): {type(exc).__name__}: {exc}")
