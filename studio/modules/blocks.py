"""Modules that wrap a block (a built subgraph, passed in as a module)."""

import torch
import torch.nn as nn


class PerDay(nn.Module):
    """Runs ``block`` on each day of a (B, N, days * bars_per_day, C) sequence separately, with shared
    weights, and joins the day results.

    The days are folded into the leading dates axis, not into the stocks axis: the block sees a batch of
    B * days "dates", each with the same N stocks in the same order (and the mask repeated per day), so a
    cross-section layer inside still sees the stocks of one date together. The block maps a (B', N, W, C)
    sequence to (B', N, C') vectors; the result is (B, N, days, C') (``output="sequence"``, day d at
    step d) or those days concatenated on the channel axis, (B, N, days * C') (``output="concat"``).
    """

    def __init__(self, block: nn.Module, bars_per_day: int, output: str = "sequence") -> None:
        super().__init__()
        if output not in ("sequence", "concat"):
            raise ValueError(f"output must be 'sequence' or 'concat', gets {output!r}")
        self.block = block
        self.bars_per_day = bars_per_day
        self.output = output

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        batch, stocks, length, channels = x.shape
        bars = self.bars_per_day
        days = length // bars
        folded = x.reshape(batch, stocks, days, bars, channels).transpose(1, 2).reshape(
            batch * days, stocks, bars, channels)
        day_mask = None
        if mask is not None:
            day_mask = mask.unsqueeze(1).expand(batch, days, stocks).reshape(batch * days, stocks)
        y = self.block(folded, day_mask)  # (B * days, N, C')
        y = y.reshape(batch, days, stocks, y.shape[-1]).transpose(1, 2)  # (B, N, days, C')
        if self.output == "concat":
            return y.reshape(batch, stocks, days * y.shape[-1])
        return y

    def extra_repr(self) -> str:
        return f"bars_per_day={self.bars_per_day}, output={self.output!r}"
