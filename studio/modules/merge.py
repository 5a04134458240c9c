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
