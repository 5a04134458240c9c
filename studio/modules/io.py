"""The model's output."""

import torch
import torch.nn as nn


class ScoreOutput(nn.Module):
    """(B, N, 1) or (B, N) values -> (B, N) scores; stocks absent from ``mask`` score 0."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() == 3:
            x = x.squeeze(-1)
        if mask is not None:
            x = x.masked_fill(~mask, 0.0)
        return x
