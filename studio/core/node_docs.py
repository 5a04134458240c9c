"""docs/nodes.md, generated from the node registry: every node type by category, with its ports and
parameters. ``studio nodes --markdown > docs/nodes.md`` refreshes it; a test fails when it is stale."""

from __future__ import annotations

import json

from studio.core.node_type import NodeType, Port
from studio.core.registry import Registry

HEADER = """# Node types

Every node type of the built-in catalogue, by category (generated from the registry by
`studio nodes --markdown > docs/nodes.md`; a test fails when this file is stale). Shapes are per stock:
every tensor also carries the leading (B dates, N stocks) axes, and channels come last (see
docs/architecture.md, "Tensor layout"); a port lists the tensor kinds it takes or gives (seq: N×L×C,
vec: N×C, map: N×H×W×C, score: N). Parameters that may be `null` say what null means.
"""


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _ports(ports: tuple[Port, ...], dynamic: bool = False) -> str:
    if not ports:
        return "set by the params (see above)" if dynamic else "none"
    return "; ".join(f"`{p.name}` ({' or '.join(p.kinds)}{', optional' if p.optional else ''})"
                     + (f": {p.doc}" if p.doc else "") for p in ports)


def _type_section(t: NodeType) -> list[str]:
    defaults = t.default_params()
    inputs, outputs = t.input_ports(defaults), t.output_ports(defaults)
    cls = type(t)
    dynamic = cls.input_ports is not NodeType.input_ports or cls.output_ports is not NodeType.output_ports
    lines = [f"### `{t.type_id}` — {t.title}", "", t.doc, ""]
    note = " (they depend on the params; shown for the defaults)" if dynamic else ""
    lines.append(f"- inputs{note}: {_ports(inputs, dynamic)}")
    lines.append(f"- outputs: {_ports(outputs, dynamic)}")
    if t.version != 1:
        lines.append(f"- version: {t.version}")
    lines.append("")
    if t.params:
        lines += ["| param | default | accepts | meaning |", "|---|---|---|---|"]
        for p in t.params:
            default = json.dumps(p.default)
            lines.append(f"| `{p.name}` | `{default}` | {_cell(p.describe())} | {_cell(p.doc)} |")
    else:
        lines.append("No parameters.")
    lines.append("")
    return lines


def nodes_markdown(registry: Registry) -> str:
    groups = registry.by_category()
    lines = [HEADER, "## Categories", ""]
    for category, types in groups.items():
        listed = ", ".join(f"`{t.type_id}`" for t in types)
        lines.append(f"- **{category}**: {listed}")
    lines.append("")
    for category, types in groups.items():
        lines += [f"## {category}", ""]
        for t in types:
            lines += _type_section(t)
    return "\n".join(lines).rstrip("\n") + "\n"
