"""Parameter declarations of node types.

A parameter knows its name, default, one-line doc and the values it accepts. ``check`` returns a
short reason when a value does not fit ("expects an integer >= 1, gets 0"); the validator prefixes it
with ``node.param``. The inspector builds its editors from the same objects, and the JSON schema of
the graph format is generated from them.

Values are plain JSON values (int, float, bool, str, None, lists): graph files are data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any


def show(value: Any) -> str:
    """A value as a user wrote it in the JSON file, shortened."""
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=True)
        if len(text.splitlines()) > 1:  # JSON keeps U+2028, U+0085... as they are: escape them too
            text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError):
        text = repr(value)
    except RecursionError:  # nested deeper than json.dumps (or repr) can go from here
        text = f"a {type(value).__name__} nested too deeply to show"
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


@dataclass(frozen=True)
class Param:
    """Base of all parameter kinds."""

    name: str
    default: Any
    doc: str
    #: None is accepted and means what ``none_means`` says (e.g. "from the input wire").
    optional: bool = False
    none_means: str = ""

    kind = "any"

    def check(self, value: Any) -> str | None:
        if value is None:
            return None if self.optional else f"expects {self.describe()}, gets null"
        return self._check(value)

    def _check(self, value: Any) -> str | None:  # pragma: no cover - overridden
        return None

    def expects(self) -> str:
        """What the parameter accepts, without the optional part."""
        return "any value"

    def describe(self) -> str:
        text = self.expects()
        if self.optional:
            text += f" or null ({self.none_means})" if self.none_means else " or null"
        return text

    def fail(self, value: Any) -> str:
        return f"expects {self.describe()}, gets {show(value)}"

    def json_schema(self) -> dict:
        schema = self._json_schema()
        if self.optional:
            return {"anyOf": [schema, {"type": "null"}]}
        return schema

    def _json_schema(self) -> dict:  # pragma: no cover - overridden
        return {}


def _in_range(value: float, lo: float | None, hi: float | None) -> bool:
    return (lo is None or value >= lo) and (hi is None or value <= hi)


def _int_schema(lo: int | None, hi: int | None) -> dict:
    schema: dict = {"type": "integer"}
    if lo is not None:
        schema["minimum"] = lo
    if hi is not None:
        schema["maximum"] = hi
    return schema


def _range_text(lo: float | None, hi: float | None) -> str:
    if lo is not None and hi is not None:
        return f" in [{lo}, {hi}]"
    if lo is not None:
        return f" >= {lo}"
    if hi is not None:
        return f" <= {hi}"
    return ""


@dataclass(frozen=True)
class IntParam(Param):
    min: int | None = None
    max: int | None = None
    kind = "int"

    def expects(self) -> str:
        return "an integer" + _range_text(self.min, self.max)

    def _check(self, value: Any) -> str | None:
        return None if _is_int(value) and _in_range(value, self.min, self.max) else self.fail(value)

    def _json_schema(self) -> dict:
        return _int_schema(self.min, self.max)


@dataclass(frozen=True)
class FloatParam(Param):
    min: float | None = None
    max: float | None = None
    #: exclusive upper bound (e.g. dropout p < 1)
    below: float | None = None
    kind = "float"

    def expects(self) -> str:
        text = "a number" + _range_text(self.min, self.max)
        if self.below is not None:
            text += f" below {self.below}"
        return text

    def _check(self, value: Any) -> str | None:
        if not _is_number(value) or not _in_range(value, self.min, self.max):
            return self.fail(value)
        if self.below is not None and value >= self.below:
            return self.fail(value)
        return None

    def _json_schema(self) -> dict:
        schema: dict = {"type": "number"}
        if self.min is not None:
            schema["minimum"] = self.min
        if self.max is not None:
            schema["maximum"] = self.max
        if self.below is not None:
            schema["exclusiveMaximum"] = self.below
        return schema


@dataclass(frozen=True)
class BoolParam(Param):
    kind = "bool"

    def expects(self) -> str:
        return "true or false"

    def _check(self, value: Any) -> str | None:
        return None if isinstance(value, bool) else self.fail(value)

    def _json_schema(self) -> dict:
        return {"type": "boolean"}


@dataclass(frozen=True)
class ChoiceParam(Param):
    choices: tuple[str, ...] = ()
    kind = "choice"

    def expects(self) -> str:
        return "one of " + ", ".join(show(c) for c in self.choices)

    def _check(self, value: Any) -> str | None:
        return None if isinstance(value, str) and value in self.choices else self.fail(value)

    def _json_schema(self) -> dict:
        return {"enum": list(self.choices)}


@dataclass(frozen=True)
class IntOrChoiceParam(Param):
    """An integer in a range, or one of a few words (Conv1d's padding: 2, "same" or "valid")."""

    min: int | None = None
    max: int | None = None
    choices: tuple[str, ...] = ()
    kind = "int_or_choice"

    def expects(self) -> str:
        words = ", ".join(show(c) for c in self.choices)
        return f"an integer{_range_text(self.min, self.max)} or one of {words}"

    def _check(self, value: Any) -> str | None:
        if isinstance(value, str):
            return None if value in self.choices else self.fail(value)
        return None if _is_int(value) and _in_range(value, self.min, self.max) else self.fail(value)

    def _json_schema(self) -> dict:
        return {"anyOf": [_int_schema(self.min, self.max), {"enum": list(self.choices)}]}


@dataclass(frozen=True)
class IntOrPairParam(Param):
    """An integer, or a pair ``[h, w]`` of integers, in a range; optionally also one of a few words
    (Conv2d's kernel_size: 3 or [1, 5]; its padding: 1, [0, 2], "same" or "valid"). A single integer
    means the same value on both axes; :func:`pair` turns a value into ``(h, w)``."""

    min: int | None = None
    max: int | None = None
    choices: tuple[str, ...] = ()
    kind = "int_or_pair"

    def expects(self) -> str:
        text = f"an integer{_range_text(self.min, self.max)} or a pair [h, w] of them"
        if self.choices:
            text += " or one of " + ", ".join(show(c) for c in self.choices)
        return text

    def _check(self, value: Any) -> str | None:
        if isinstance(value, str):
            return None if value in self.choices else self.fail(value)
        if isinstance(value, list):
            if len(value) != 2:
                return f"expects a pair [h, w] (2 integers), gets {len(value)} item{'s' * (len(value) != 1)}"
            ok = all(_is_int(v) and _in_range(v, self.min, self.max) for v in value)
            return None if ok else self.fail(value)
        return None if _is_int(value) and _in_range(value, self.min, self.max) else self.fail(value)

    def _json_schema(self) -> dict:
        item = _int_schema(self.min, self.max)
        options: list[dict] = [item, {"type": "array", "items": item, "minItems": 2, "maxItems": 2}]
        if self.choices:
            options.append({"enum": list(self.choices)})
        return {"anyOf": options}


def pair(value: Any) -> tuple[int, int]:
    """An int-or-pair value as ``(h, w)``: 3 -> (3, 3), [1, 5] -> (1, 5)."""
    if isinstance(value, list | tuple):
        return int(value[0]), int(value[1])
    return int(value), int(value)


@dataclass(frozen=True)
class StrParam(Param):
    """Free text matching a simple rule (e.g. a block name or a port name)."""

    identifier: bool = False
    kind = "str"

    def expects(self) -> str:
        return "a Python identifier" if self.identifier else "a string"

    def _check(self, value: Any) -> str | None:
        if not isinstance(value, str) or (self.identifier and not value.isidentifier()):
            return self.fail(value)
        return None

    def _json_schema(self) -> dict:
        if self.identifier:
            return {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"}
        return {"type": "string"}


@dataclass(frozen=True)
class ListParam(Param):
    """A list of items of one parameter kind (e.g. the per-layer settings of a stack)."""

    item: Param | None = None
    min_items: int = 0
    max_items: int | None = None
    kind = "list"

    def expects(self) -> str:
        inner = self.item.expects() if self.item else "values"
        count = _range_text(self.min_items or None, self.max_items).replace(" in", "").strip()
        return f"a list{(' of ' + count) if count else ''} of {inner}"

    def _check(self, value: Any) -> str | None:
        if not isinstance(value, list):
            return self.fail(value)
        if len(value) < self.min_items or (self.max_items is not None and len(value) > self.max_items):
            return self.fail(value)
        if self.item is not None:
            for i, entry in enumerate(value):
                reason = self.item.check(entry)
                if reason:
                    return f"item {i}: {reason}"
        return None

    def _json_schema(self) -> dict:
        schema: dict = {"type": "array", "minItems": self.min_items}
        if self.max_items is not None:
            schema["maxItems"] = self.max_items
        if self.item is not None:
            schema["items"] = self.item.json_schema()
        return schema


@dataclass(frozen=True)
class RecordParam(Param):
    """A JSON object with declared fields (e.g. one layer's settings in a stack)."""

    fields: tuple[Param, ...] = field(default_factory=tuple)
    kind = "record"

    def expects(self) -> str:
        return "an object with " + ", ".join(f.name for f in self.fields)

    def _check(self, value: Any) -> str | None:
        if not isinstance(value, dict):
            return self.fail(value)
        known = {f.name: f for f in self.fields}
        for key in value:
            if key not in known:
                return f"unknown field {show(key)} (known: {', '.join(known)})"
        for f in self.fields:
            if f.name not in value:
                return f"missing field {show(f.name)}"
            reason = f.check(value[f.name])
            if reason:
                return f"{f.name}: {reason}"
        return None

    def _json_schema(self) -> dict:
        return {
            "type": "object",
            "properties": {f.name: f.json_schema() for f in self.fields},
            "required": [f.name for f in self.fields],
            "additionalProperties": False,
        }
