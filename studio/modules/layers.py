"""torch layers adapted to the (B, N, ..., C) channels-last layout; their weights keep torch's names."""

import torch
import torch.nn as nn


class SeqConv1d(nn.Conv1d):
    """nn.Conv1d over the length axis of a (B, N, L, C) sequence."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead, length, channels = x.shape[:-2], x.shape[-2], x.shape[-1]
        y = super().forward(x.reshape(-1, length, channels).transpose(1, 2))
        return y.transpose(1, 2).reshape(*lead, y.shape[-1], y.shape[-2])


class SeqGRU(nn.GRU):
    """nn.GRU (batch first) over a (B, N, L, C) sequence; returns (every step's output, final state)."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 dropout: float = 0.0, bidirectional: bool = False) -> None:
        super().__init__(input_size, hidden_size, num_layers=num_layers, bias=bias, batch_first=True,
                         dropout=dropout, bidirectional=bidirectional)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lead, length, channels = x.shape[:-2], x.shape[-2], x.shape[-1]
        y, h_n = super().forward(x.reshape(-1, length, channels))
        last = torch.cat([h_n[-2], h_n[-1]], dim=-1) if self.bidirectional else h_n[-1]
        return y.reshape(*lead, length, y.shape[-1]), last.reshape(*lead, last.shape[-1])
