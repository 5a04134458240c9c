"""Merges of parallel branches."""

import torch
import torch.nn as nn


class AddN(nn.Module):
    """Element-wise sum of any number of same-shaped tensors."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        total = xs[0]
        for x in xs[1:]:
            total = total + x
        return total


class ConcatChannels(nn.Module):
    """Concatenation along the channel (last) axis."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.cat(xs, dim=-1)


class MulN(nn.Module):
    """Element-wise product of any number of same-shaped tensors."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        total = xs[0]
        for x in xs[1:]:
            total = total * x
        return total


class MeanN(nn.Module):
    """Element-wise mean of any number of same-shaped tensors."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        total = xs[0]
        for x in xs[1:]:
            total = total + x
        return total / len(xs)


class Residual(nn.Module):
    """y = shortcut(x) + gain * f: a skip connection around a branch f.

    ``shortcut``: "identity" (x as is) or "linear" (a bias-free Linear from x's channels to f's, for a
    branch that changes the channel count). ``scale``: "none", "scalar" (one learned gain) or "channel"
    (one gain per channel, LayerScale); the gain starts at ``scale_init`` (0 starts as the identity, ReZero).
    """

    def __init__(self, in_channels: int, channels: int, shortcut: str = "identity", scale: str = "none",
                 scale_init: float = 1.0) -> None:
        super().__init__()
        if shortcut not in ("identity", "linear") or scale not in ("none", "scalar", "channel"):
            raise ValueError(f"unknown shortcut {shortcut!r} or scale {scale!r}")
        self.project = nn.Linear(in_channels, channels, bias=False) if shortcut == "linear" else None
        size = {"none": 0, "scalar": 1, "channel": channels}[scale]
        self.gain = nn.Parameter(torch.full((size,), float(scale_init))) if size else None

    def forward(self, x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        skip = self.project(x) if self.project is not None else x
        return skip + (f * self.gain if self.gain is not None else f)


class StackSteps(nn.Module):
    """k same-sized (B, N, C) vectors -> a (B, N, k, C) sequence, input i at step i."""

    def forward(self, *xs: torch.Tensor) -> torch.Tensor:
        return torch.stack(xs, dim=-2)
