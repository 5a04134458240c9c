"""Upgrading graph files written in older format versions.

Each step takes the JSON object of version ``v`` and returns that of ``v + 1``; ``migrate`` chains
them. Steps work on plain JSON (never on the document classes) so that old files keep loading however
the code changes. To change the format: bump CURRENT_VERSION, add the step, add a fixture of the old
version under tests/fixtures/ and a test that upgrades it.

Version history
---------------
0 (prototype): ``window`` {features, days, bars} instead of ``input``; nodes as a list of objects with
  ``id``, ``type``, ``params``, ``x``, ``y`` and no type version; ``links`` as
  [from_node, from_port, to_node, to_port] lists; no blocks.
1: the current format (docs/graph-format.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from studio.core.params import show

FORMAT_TAG = "model-studio.graph"
CURRENT_VERSION = 1


def _v0_to_v1(doc: dict[str, Any]) -> dict[str, Any]:
    window = doc.get("window") or {}
    if not isinstance(window, dict):
        raise ValueError("\"window\" must be an object")
    items, links = doc.get("nodes", []), doc.get("links", [])
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise ValueError("\"nodes\" must be a list of objects")
    for i, item in enumerate(items):
        # ids become object keys, which JSON (and the rest of the loader) needs to be strings
        if not isinstance(item.get("id"), str):
            raise ValueError(f"nodes[{i}]: \"id\" must be a string, gets {show(item.get('id'))}")
    if not isinstance(links, list) or not all(isinstance(link, list) and len(link) == 4
                                              and all(isinstance(part, str) for part in link) for link in links):
        raise ValueError("\"links\" must be a list of [from_node, from_port, to_node, to_port] strings")
    nodes = {}
    for item in items:
        nodes[item["id"]] = {
            "type": item["type"],
            "version": 1,  # v0 predates type versions; every v0 type is version 1 of its type
            "params": item.get("params", {}),
            "pos": [item.get("x", 0), item.get("y", 0)],
        }
    edges = [{"from": f"{a}.{ap}", "to": f"{b}.{bp}"} for a, ap, b, bp in links]
    out = {
        "format": FORMAT_TAG,
        "version": 1,
        "studio_version": doc.get("studio_version", "0.0.0"),
        "kind": "model",
        "name": doc.get("name", ""),
        "description": doc.get("description", ""),
        "input": {
            "features": window.get("features"),
            "days": window.get("days"),
            "bars_per_day": window.get("bars"),
        },
        "nodes": nodes,
        "edges": edges,
        "blocks": {},
    }
    return out


STEPS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _v0_to_v1}


def migrate(doc: dict[str, Any]) -> dict[str, Any]:
    """Upgrade a graph-file object to CURRENT_VERSION (a no-op for current files)."""
    version = doc["version"]
    while version < CURRENT_VERSION:
        doc = STEPS[version](doc)
        version += 1
        doc["version"] = version
    return doc
