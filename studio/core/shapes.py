"""Tensor shapes as the validator sees them: a kind and the per-stock dimensions.

Every tensor in a model carries two leading axes that shape inference keeps symbolic: B (dates in the
batch) and N (stocks of a date). They are never shown on a wire because no node changes them; what
follows them depends on the tensor kind:

=========  ==================  ============================================
kind       per-stock dims      meaning
=========  ==================  ============================================
``seq``    (L, C)              a sequence: length L (time steps), C channels
``vec``    (C,)                one vector per stock
``map``    (H, W, C)           a 2-D map (e.g. days x bars), C channels
``score``  ()                  one number per stock: the model's output
=========  ==================  ============================================

Channels always come last ("channels-last"); nodes that wrap channels-first torch layers (Conv1d,
pools) transpose inside, so wires read the same everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

SEQ = "seq"
VEC = "vec"
MAP = "map"
SCORE = "score"
KINDS = (SEQ, VEC, MAP, SCORE)
KIND_AXES = {SEQ: ("L", "C"), VEC: ("C",), MAP: ("H", "W", "C"), SCORE: ()}
KIND_NAMES = {
    SEQ: "a sequence (N×L×C)",
    VEC: "a vector per stock (N×C)",
    MAP: "a 2-D map (N×H×W×C)",
    SCORE: "a score per stock (N)",
}


@dataclass(frozen=True)
class TensorShape:
    kind: str
    dims: tuple[int, ...]

    def __post_init__(self) -> None:
        if self.kind not in KIND_AXES:
            raise ValueError(f"unknown tensor kind {self.kind!r}")
        if len(self.dims) != len(KIND_AXES[self.kind]):
            raise ValueError(f"a {self.kind} has {len(KIND_AXES[self.kind])} dims, not {len(self.dims)}")

    @classmethod
    def seq(cls, length: int, channels: int) -> TensorShape:
        return cls(SEQ, (length, channels))

    @classmethod
    def vec(cls, channels: int) -> TensorShape:
        return cls(VEC, (channels,))

    @classmethod
    def map(cls, height: int, width: int, channels: int) -> TensorShape:
        return cls(MAP, (height, width, channels))

    @classmethod
    def score(cls) -> TensorShape:
        return cls(SCORE, ())

    @property
    def channels(self) -> int:
        return self.dims[-1] if self.dims else 1

    @property
    def length(self) -> int:
        if self.kind != SEQ:
            raise ValueError(f"a {self.kind} has no length")
        return self.dims[0]

    def with_channels(self, channels: int) -> TensorShape:
        if self.kind == SCORE:
            raise ValueError("a score has no channels")
        return TensorShape(self.kind, (*self.dims[:-1], channels))

    def numel(self) -> int:
        """Elements per stock."""
        return math.prod(self.dims)

    def torch_shape(self, batch: int, stocks: int) -> tuple[int, ...]:
        """The concrete tensor shape for ``batch`` dates of ``stocks`` stocks."""
        return (batch, stocks, *self.dims)

    def __str__(self) -> str:
        return "×".join(["N", *map(str, self.dims)])

    def describe(self) -> str:
        """Shape with axis names, e.g. ``seq N×L=480×C=3``."""
        named = [f"{a}={d}" for a, d in zip(KIND_AXES[self.kind], self.dims, strict=True)]
        return f"{self.kind} " + "×".join(["N", *named])

    def to_json(self) -> dict:
        return {"kind": self.kind, "dims": list(self.dims)}


def conv_out_length(length: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                    ceil_mode: bool = False) -> int:
    """L_out = floor((L_in + 2p - d(k-1) - 1)/s + 1), as torch's Conv1d and pools compute it (0 when the
    dilated kernel does not fit the padded input).

    With ``ceil_mode`` the division rounds up, exactly as torch's pools do (:func:`pool_out_length`).
    """
    if ceil_mode:
        return max(pool_out_length(length, kernel, stride, padding, dilation, True), 0)
    span = length + 2 * padding - dilation * (kernel - 1) - 1
    if span < 0:
        return 0
    return span // stride + 1


def pool_out_length(length: int, kernel: int, stride: int, padding: int = 0, dilation: int = 1,
                    ceil_mode: bool = False) -> int:
    """The output length of torch's pools (``pooling_output_shape`` in ATen), which may be < 1 (torch
    then refuses the input). With ``ceil_mode`` the division rounds up, but the last window must start
    inside the input or the left padding: a window may then reach past the right edge (even past an
    input shorter than the kernel, as torch allows)."""
    span = length + 2 * padding - dilation * (kernel - 1) - 1 + (stride - 1 if ceil_mode else 0)
    out = span // stride + 1  # floor division, like torch's div_rtn
    if ceil_mode and (out - 1) * stride >= length + padding:
        out -= 1
    return out
