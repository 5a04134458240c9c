"""Reductions over the time axis of a (B, N, L, C) sequence."""

import math

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


class AttentionPool(nn.Module):
    """Attention pooling over time: a learned query per head scores every step of a (B, N, L, C)
    sequence (score = x_t[head] · q_head / sqrt(C / heads)), a softmax over the steps weighs them, and
    the weighted sum is the (B, N, C) output. Also returns the weights (B, N, L, heads).

    The queries start at zero: the initial output is the mean over time.
    """

    def __init__(self, channels: int, heads: int = 1) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"heads {heads} must divide channels {channels}")
        self.heads = heads
        self.query = nn.Parameter(torch.zeros(heads, channels // heads))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        parts = x.unflatten(-1, (self.heads, -1))  # (B, N, L, heads, C / heads)
        scores = (parts * self.query).sum(-1) / math.sqrt(self.query.shape[-1])  # (B, N, L, heads)
        weights = torch.softmax(scores, dim=-2)
        pooled = (weights.unsqueeze(-1) * parts).sum(-3)  # (B, N, heads, C / heads)
        return pooled.flatten(-2), weights

    def extra_repr(self) -> str:
        return f"channels={self.query.numel()}, heads={self.heads}"


class SliceSteps(nn.Module):
    """The steps ``start:stop:step`` of a (B, N, L, C) sequence (a view)."""

    def __init__(self, start: int = 0, stop: int | None = None, step: int = 1) -> None:
        super().__init__()
        self.start, self.stop, self.step = start, stop, step

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.start:self.stop:self.step, :]

    def extra_repr(self) -> str:
        return f"start={self.start}, stop={self.stop}, step={self.step}"


class SelectStep(nn.Module):
    """One step of a (B, N, L, C) sequence as a (B, N, C) vector: ``index`` counts from the first step
    (0) or, when negative, from the last (-1), e.g. the CLS token's output at step 0."""

    def __init__(self, index: int = 0) -> None:
        super().__init__()
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[..., self.index, :]

    def extra_repr(self) -> str:
        return f"index={self.index}"


class DayMean(nn.Module):
    """(B, N, days * bars_per_day, C) -> (B, N, days, C): the mean of each day's bars."""

    def __init__(self, bars_per_day: int) -> None:
        super().__init__()
        self.bars_per_day = bars_per_day

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-2, (-1, self.bars_per_day)).mean(dim=-2)

    def extra_repr(self) -> str:
        return f"bars_per_day={self.bars_per_day}"
