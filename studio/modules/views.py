"""Views of a tensor's per-stock axes (the day view and flattening use torch's nn.Unflatten / nn.Flatten)."""

import torch
import torch.nn as nn


class SwapTimeChannels(nn.Module):
    """(B, N, L, C) -> (B, N, C, L): the channels become the steps, so a Conv1d runs across features."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(-1, -2)
