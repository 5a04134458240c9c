"""The JSON Schema of graph files, generated from the format and the node registry.

The committed copy (studio/core/graph.schema.json) is what editors and other tools validate against;
a test regenerates it and fails when it is stale (``studio schema --out studio/core/graph.schema.json``
refreshes it). The schema checks the file's structure and, for every known node type, its params;
shapes and wiring rules need the validator.
"""

from __future__ import annotations

from pathlib import Path

from studio.core.migrations import CURRENT_VERSION, FORMAT_TAG
from studio.core.registry import Registry

SCHEMA_PATH = Path(__file__).with_name("graph.schema.json")
SCHEMA_ID = "https://model-studio.dev/schema/graph-v1.json"


def graph_schema(registry: Registry) -> dict:
    """The schema of a graph file whose nodes are of ``registry``'s types."""
    identifier = {"type": "string", "pattern": r"^[A-Za-z][A-Za-z0-9_]*$"}
    nodes = {
        "type": "object",
        "propertyNames": identifier,
        "additionalProperties": {"$ref": "#/$defs/node"},
    }
    edges = {"type": "array", "items": {"$ref": "#/$defs/edge"}}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Model Studio graph file",
        "description": f"Format {FORMAT_TAG} version {CURRENT_VERSION}; see docs/graph-format.md.",
        "type": "object",
        "required": ["format", "version", "studio_version", "kind", "name", "description", "nodes", "edges",
                     "blocks"],
        "additionalProperties": False,
        "properties": {
            "format": {"const": FORMAT_TAG},
            "version": {"const": CURRENT_VERSION},
            "studio_version": {"type": "string"},
            "kind": {"enum": ["model", "block"]},
            "name": {"type": "string"},
            "description": {"type": "string"},
            "input": {"$ref": "#/$defs/input"},
            "nodes": nodes,
            "edges": edges,
            "blocks": {
                "type": "object",
                "propertyNames": identifier,
                "additionalProperties": {"oneOf": [{"$ref": "#/$defs/block_ref"}, {"$ref": "#/$defs/block"}]},
            },
        },
        "if": {"properties": {"kind": {"const": "model"}}},
        "then": {"required": ["input"]},
        "$defs": _definitions(registry, nodes, edges),
    }


def _typed_params(registry: Registry) -> list[dict]:
    """One rule per node type: a node of that type has exactly its params, each of its kind."""
    return [{
        "if": {"properties": {"type": {"const": node_type.type_id}}, "required": ["type"]},
        "then": {"properties": {
            "version": {"maximum": node_type.version},
            "params": {
                "type": "object",
                "properties": {p.name: p.json_schema() for p in node_type.params},
                "required": [p.name for p in node_type.params],
                "additionalProperties": False,
            },
        }},
    } for node_type in registry]


def _definitions(registry: Registry, nodes: dict, edges: dict) -> dict:
    """The parts a file refers to: the input window, a node, an edge, a block (inline or a file)."""
    endpoint = {"type": "string", "pattern": r"^[^.\s]+\.[^.\s]+$", "description": "node.port"}
    return {
        "input": {
            "type": "object",
            "required": ["features", "days", "bars_per_day"],
            "additionalProperties": False,
            "properties": {
                "features": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1,
                             "uniqueItems": True},
                "days": {"type": "integer", "minimum": 1, "maximum": 1000},
                "bars_per_day": {"type": "integer", "minimum": 1, "maximum": 10000},
            },
        },
        "node": {
            "type": "object",
            "required": ["type", "version", "params", "pos"],
            "additionalProperties": False,
            "properties": {
                "type": {"type": "string", "minLength": 1},
                "version": {"type": "integer", "minimum": 1},
                "params": {"type": "object"},
                "pos": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2},
            },
            "allOf": _typed_params(registry),
        },
        "edge": {
            "type": "object",
            "required": ["from", "to"],
            "additionalProperties": False,
            "properties": {"from": endpoint, "to": endpoint},
        },
        "block_ref": {
            "type": "object",
            "required": ["path"],
            "additionalProperties": False,
            "properties": {"path": {"type": "string", "pattern": r"^[^/\\].*\.json$"}},
        },
        "block": {
            "type": "object",
            "required": ["kind", "name", "description", "nodes", "edges"],
            "additionalProperties": False,
            "properties": {
                "kind": {"const": "block"},
                "name": {"type": "string"},
                "description": {"type": "string"},
                "nodes": nodes,
                "edges": edges,
            },
        },
    }
