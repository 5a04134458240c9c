"""The node catalogue: declarations of the built-in node types (no torch, no Qt).

Each module here declares the types of one category. To add a type: write a NodeType subclass in
the fitting module (or a new one listed in BUILTIN_MODULES), and the registry, palette, inspector,
validator, builder, exporter, docs and registry-wide tests pick it up. See docs/architecture.md.
"""

from __future__ import annotations

import importlib
import inspect

from studio.core.node_type import NodeType
from studio.core.registry import Registry

BUILTIN_MODULES = (
    "studio.nodes.io",
    "studio.nodes.layers",
    "studio.nodes.pooling",
    "studio.nodes.norm",
    "studio.nodes.reshape",
    "studio.nodes.recurrent",
    "studio.nodes.cells",
    "studio.nodes.merge",
    "studio.nodes.reduce",
    "studio.nodes.transformer",
)


def builtin_types() -> list[type[NodeType]]:
    """Every NodeType subclass defined in the built-in modules, in a stable order."""
    found: list[type[NodeType]] = []
    for name in BUILTIN_MODULES:
        module = importlib.import_module(name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, NodeType) and obj.__module__ == name and "type_id" in obj.__dict__:
                found.append(obj)
    return sorted(found, key=lambda t: t.type_id)


def register_builtins(registry: Registry) -> None:
    for node_type in builtin_types():
        registry.register(node_type)


_default: Registry | None = None


def default_registry() -> Registry:
    """The built-in catalogue plus every installed node pack (loaded once per process)."""
    global _default
    if _default is None:
        registry = Registry()
        register_builtins(registry)
        registry.load_entry_points()
        _default = registry
    return _default
