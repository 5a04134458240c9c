"""The declaration of a node type: everything the studio knows about one kind of node.

A node type is a subclass of :class:`NodeType` with class attributes for its identity, ports and
parameters, and methods for its shape rule, parameter count and torch recipe. The palette, the
inspector, the validator, the builder, the exporter, the docs and the tests all read this one
declaration; nothing else about a node type is written anywhere.

Declarations never import torch: ``recipe`` returns a :class:`Recipe` that names the module class by
its import path, and the builder (``studio.torchgraph``) turns it into a module.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from studio.core.params import Param
from studio.core.shapes import KIND_NAMES, TensorShape

if TYPE_CHECKING:
    from studio.core.document import InputSpec


@dataclass(frozen=True)
class Port:
    """An input or output port. ``kinds`` lists the tensor kinds it accepts (inputs) or makes (outputs)."""

    name: str
    kinds: tuple[str, ...]
    doc: str = ""
    optional: bool = False

    def accepts(self, kind: str) -> bool:
        return kind in self.kinds

    def describe_kinds(self) -> str:
        return " or ".join(KIND_NAMES[k] for k in self.kinds)


@dataclass(frozen=True)
class Recipe:
    """How to make the torch module of a node: ``target`` is an import path such as
    ``torch.nn.ReLU`` or ``studio.modules.merge.Concat``; ``kwargs`` are literal JSON-like values.

    A node that wraps a block (the per-day node) names it in ``block`` with the shapes to bind its inputs
    to (``block_inputs``): the builder builds that block instance and passes its module to the target
    as the first argument, ``target(block_module, **kwargs)``."""

    target: str
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    block: str | None = None
    block_inputs: Mapping[str, TensorShape] | None = None


class ShapeError(Exception):
    """Raised by a shape rule. ``port`` or ``param`` says where the problem is on the node."""

    def __init__(self, message: str, *, port: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.port = port
        self.param = param


class Unbound(ShapeError):
    """A block's input has no shape yet: the block is being checked on its own, not as an instance.
    The validator stops inference there without reporting a problem."""

    def __init__(self) -> None:
        super().__init__("unbound block input")


class InferContext:
    """What a shape rule may need beyond its own params and input shapes.

    ``input_spec`` is the graph's bar window; ``blocks`` resolves block definitions (a BlockScope,
    used by the block node type); ``bound`` gives the shapes of a block's inputs when a block instance
    is inferred (None when a block definition is checked on its own). The validator supplies it.
    """

    def __init__(self, input_spec: InputSpec | None, blocks: Any = None,
                 bound: Mapping[str, TensorShape] | None = None) -> None:
        self.input_spec = input_spec
        self.blocks = blocks
        self.bound = bound


class NodeType:
    """Base class of node-type declarations. Subclasses set the class attributes below."""

    #: stable id written into graph files; never change it once files exist
    type_id: ClassVar[str]
    #: bump when params change meaning, and implement ``migrate``
    version: ClassVar[int] = 1
    category: ClassVar[str]
    title: ClassVar[str]
    doc: ClassVar[str] = ""
    #: other words people search for the type by (the palette's search ranks them next to the title)
    keywords: ClassVar[tuple[str, ...]] = ()
    inputs: ClassVar[tuple[Port, ...]] = ()
    outputs: ClassVar[tuple[Port, ...]] = ()
    params: ClassVar[tuple[Param, ...]] = ()
    #: the module also receives the (B, N) mask of stocks present (cross-section layers need it)
    uses_mask: ClassVar[bool] = False
    #: the ports depend on more than the params (a block node's ports come from its block): the
    #: validator then checks every node of the type afresh instead of reusing an earlier check
    ports_from_context: ClassVar[bool] = False
    #: param overrides worth trying: the registry-wide tests build and run each one (besides the
    #: defaults), so every shape-changing parameter should appear in some example
    examples: ClassVar[tuple[dict[str, Any], ...]] = ()

    # ---- ports -------------------------------------------------------------------------------
    def input_ports(self, params: Mapping[str, Any], ctx: InferContext | None = None) -> tuple[Port, ...]:
        """Input ports; a type whose ports depend on its params (Add with k inputs) overrides this."""
        return self.inputs

    def output_ports(self, params: Mapping[str, Any], ctx: InferContext | None = None) -> tuple[Port, ...]:
        return self.outputs

    # ---- params ------------------------------------------------------------------------------
    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def default_params(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def check_params(self, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Rules between params that hold whatever the inputs are: a list of (param, reason).
        Called only when every single param is valid on its own."""
        return []

    def warn_params(self, params: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Settings that are legal but probably not what was meant: (param, reason), shown as
        warnings (they do not stop a build)."""
        return []

    def output_aliases_input(self, params: Mapping[str, Any]) -> bool:
        """True when the output may be a view of the (first) input, sharing its memory (a reshape, a
        transpose, dropout in eval mode): an in-place node after it overwrites that input too, so the
        validator's fan-out check for ``inplace`` looks through it."""
        return False

    def migrate(self, params: dict[str, Any], from_version: int) -> dict[str, Any]:
        """Bring params written by an older version of this type up to date."""
        raise ValueError(f"no migration from version {from_version}")

    # ---- shapes, size, module ----------------------------------------------------------------
    def infer(self, params: Mapping[str, Any], inputs: Mapping[str, TensorShape],
              ctx: InferContext) -> dict[str, TensorShape]:
        """The shape rule: output shapes from input shapes. Raise ShapeError when they do not fit.
        ``inputs`` holds the connected ports only (optional ones may be missing)."""
        raise NotImplementedError

    def param_count(self, params: Mapping[str, Any], inputs: Mapping[str, TensorShape],
                    ctx: InferContext) -> int:
        """Trainable parameters of the module; must equal the built module's count (tests check)."""
        return 0

    def activation_count(self, params: Mapping[str, Any], inputs: Mapping[str, TensorShape],
                         outputs: Mapping[str, TensorShape], ctx: InferContext) -> int:
        """Numbers per stock and date this node's forward makes, as an estimate of what training keeps
        for the backward: its outputs, plus what it computes inside where that dominates (a recurrent
        layer's gates at every step, attention's step-by-step weights; types override it)."""
        return sum(shape.numel() for shape in outputs.values())

    def recipe(self, params: Mapping[str, Any], inputs: Mapping[str, TensorShape],
               ctx: InferContext) -> Recipe:
        """How the builder makes this node's module: its class's import path and arguments."""
        raise NotImplementedError

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # Node packs written before the method was named ``recipe`` defined ``build``; they still load.
        legacy = cls.__dict__.get("build")
        if legacy is not None and "recipe" not in cls.__dict__:
            warnings.warn(f"{cls.__module__}.{cls.__qualname__}: NodeType.build is now named recipe",
                          DeprecationWarning, stacklevel=2)
            cls.recipe = legacy  # type: ignore[method-assign]

    # ---- helpers for shape rules -------------------------------------------------------------
    @staticmethod
    def resolve_channels(params: Mapping[str, Any], name: str, shape: TensorShape, port: str) -> int:
        """An ``in_*`` param that may be null (taken from the wire) or must match the wire."""
        declared = params.get(name)
        if declared is not None and declared != shape.channels:
            unit = "channel" if declared == 1 else "channels"
            raise ShapeError(f"expects {declared} {unit}, gets {shape.channels}", port=port)
        return shape.channels

    def __repr__(self) -> str:
        return f"<node type {self.type_id} v{self.version}>"
