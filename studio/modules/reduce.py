"""Reductions over the time axis of a (B, N, L, C) sequence."""

import torch
import torch.nn as nn


class TimeReduce(nn.Module):
    def __init__(self, mode: str = "last") -> None:
        super().__init__()
        if mode not in ("last", "mean", "max"):
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mode == "last":
            return x[..., -1, :]
        if self.mode == "mean":
            return x.mean(dim=-2)
        return x.amax(dim=-2)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"
