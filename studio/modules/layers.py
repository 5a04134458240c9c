"""torch layers adapted to the (B, N, ..., C) channels-last layout; their weights keep torch's names.

Channels-first torch layers run on (B*N, C, L) or (B*N, C, H, W) views made by ``seq_apply`` and
``map_apply`` (the .py exporter copies every module-level function and constant a class reads).
"""

import math

import torch
import torch.nn as nn


def seq_apply(fn, x: torch.Tensor) -> torch.Tensor:
    """Run a channels-first 1-D layer ``fn`` ((R, C, L) -> (R, C', L')) on a (..., L, C) sequence."""
    lead, length, channels = x.shape[:-2], x.shape[-2], x.shape[-1]
    rows = x.reshape(-1, length, channels)
    if length > 1 and channels > 1:
        # a view, no copy: the output of a channels-first layer before comes back as the contiguous tensor
        # it was, so series of convolutions and pools copy nothing in between
        y = fn(rows.transpose(1, 2))
    else:
        # a size-1 axis makes that view ambiguous (it counts as channels-first too, with odd strides), and
        # torch 2.13's oneDNN convolution then corrupts memory and a later, unrelated operation crashes the
        # process: hand it a canonical channels-first copy instead
        y = fn(rows.transpose(1, 2).clone(memory_format=torch.contiguous_format))
    return y.transpose(1, 2).reshape(*lead, y.shape[-1], y.shape[-2])


def map_apply(fn, x: torch.Tensor) -> torch.Tensor:
    """Run a channels-first 2-D layer ``fn`` ((R, C, H, W) -> (R, C', H', W')) on a (..., H, W, C) map."""
    lead, (height, width, channels) = x.shape[:-3], x.shape[-3:]
    rows = x.reshape(-1, height, width, channels)
    if height > 1 and width > 1 and channels > 1:
        y = fn(rows.permute(0, 3, 1, 2))  # a view, no copy (see seq_apply)
    else:
        # e.g. kernel (2, 1), stride 2, padding (1, 3), dilation 4 on a 6 x 1 map crashed (see seq_apply)
        y = fn(rows.permute(0, 3, 1, 2).clone(memory_format=torch.contiguous_format))
    return y.permute(0, 2, 3, 1).reshape(*lead, y.shape[-2], y.shape[-1], y.shape[-3])


class SeqConv1d(nn.Conv1d):
    """nn.Conv1d over the length axis of a (B, N, L, C) sequence."""


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return seq_apply(super().forward, x)


class MapConv2d(nn.Conv2d):
    """nn.Conv2d over the (H, W) axes of a (B, N, H, W, C) map."""


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return map_apply(super().forward, x)


class FeatureProjection(nn.Linear):
    """nn.Linear on the channel axis (each bar's features -> d_model), optionally times sqrt(d_model)."""

    def __init__(self, in_features: int, d_model: int, bias: bool = True, scale: bool = False) -> None:
        super().__init__(in_features, d_model, bias=bias)
        self.scale = math.sqrt(d_model) if scale else 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = super().forward(x)
        return y * self.scale if self.scale != 1.0 else y


# ---- pools -----------------------------------------------------------------------------------------

class SeqMaxPool1d(nn.MaxPool1d):
    """nn.MaxPool1d (return_indices=False) over the length axis of a (B, N, L, C) sequence."""


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return seq_apply(super().forward, x)


class SeqAvgPool1d(nn.AvgPool1d):
    """nn.AvgPool1d over the length axis of a (B, N, L, C) sequence."""


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return seq_apply(super().forward, x)


class SeqAdaptiveAvgPool1d(nn.AdaptiveAvgPool1d):
    """nn.AdaptiveAvgPool1d over the length axis of a (B, N, L, C) sequence."""


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return seq_apply(super().forward, x)


class SeqAdaptiveMaxPool1d(nn.AdaptiveMaxPool1d):
    """nn.AdaptiveMaxPool1d (return_indices=False) over the length axis of a (B, N, L, C) sequence."""


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return seq_apply(super().forward, x)


class MapMaxPool2d(nn.MaxPool2d):
    """nn.MaxPool2d (return_indices=False) over the (H, W) axes of a (B, N, H, W, C) map."""


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return map_apply(super().forward, x)


class MapAvgPool2d(nn.AvgPool2d):
    """nn.AvgPool2d over the (H, W) axes of a (B, N, H, W, C) map."""


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return map_apply(super().forward, x)


class MapAdaptiveAvgPool2d(nn.AdaptiveAvgPool2d):
    """nn.AdaptiveAvgPool2d over the (H, W) axes of a (B, N, H, W, C) map."""


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return map_apply(super().forward, x)


class MapAdaptiveMaxPool2d(nn.AdaptiveMaxPool2d):
    """nn.AdaptiveMaxPool2d (return_indices=False) over the (H, W) axes of a (B, N, H, W, C) map."""


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return map_apply(super().forward, x)


# ---- normalisation and resampling --------------------------------------------------------------------

class ChannelBatchNorm1d(nn.BatchNorm1d):
    """nn.BatchNorm1d per channel of a (B, N, L, C) sequence (statistics over B·N·L) or of (B, N, C)
    vectors (statistics over B·N)."""


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            return super().forward(x.reshape(-1, x.shape[-1])).reshape(x.shape)
        return seq_apply(super().forward, x)


class MapBatchNorm2d(nn.BatchNorm2d):
    """nn.BatchNorm2d per channel of a (B, N, H, W, C) map (statistics over B·N·H·W)."""


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return map_apply(super().forward, x)


class ChannelsLastUpsample(nn.Upsample):
    """nn.Upsample over the length of a (B, N, L, C) sequence or the (H, W) axes of a (B, N, H, W, C) map."""


    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            return seq_apply(super().forward, x)
        return map_apply(super().forward, x)


# ---- recurrent layers (batch first) ------------------------------------------------------------------

def recurrent_outputs(y: torch.Tensor, h_n: torch.Tensor, bidirectional: bool, lead, length: int):
    """(every step's output, final hidden state of the last layer, both directions) back in (B, N, ...)."""
    last = torch.cat([h_n[-2], h_n[-1]], dim=-1) if bidirectional else h_n[-1]
    return y.reshape(*lead, length, y.shape[-1]), last.reshape(*lead, last.shape[-1])


class SeqGRU(nn.GRU):
    """nn.GRU (batch first) over a (B, N, L, C) sequence; returns (every step's output, final state)."""


    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 dropout: float = 0.0, bidirectional: bool = False) -> None:
        super().__init__(input_size, hidden_size, num_layers=num_layers, bias=bias, batch_first=True,
                         dropout=dropout, bidirectional=bidirectional)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lead, length, channels = x.shape[:-2], x.shape[-2], x.shape[-1]
        y, h_n = super().forward(x.reshape(-1, length, channels))
        return recurrent_outputs(y, h_n, self.bidirectional, lead, length)


class SeqLSTM(nn.LSTM):
    """nn.LSTM (batch first) over a (B, N, L, C) sequence; returns (every step's output, final hidden
    state h). With proj_size > 0 both have proj_size features per direction."""


    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 dropout: float = 0.0, bidirectional: bool = False, proj_size: int = 0) -> None:
        super().__init__(input_size, hidden_size, num_layers=num_layers, bias=bias, batch_first=True,
                         dropout=dropout, bidirectional=bidirectional, proj_size=proj_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lead, length, channels = x.shape[:-2], x.shape[-2], x.shape[-1]
        y, (h_n, _) = super().forward(x.reshape(-1, length, channels))
        return recurrent_outputs(y, h_n, self.bidirectional, lead, length)


class SeqRNN(nn.RNN):
    """nn.RNN (batch first, tanh or relu) over a (B, N, L, C) sequence; returns (every step's output,
    final state)."""


    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, dropout: float = 0.0, bidirectional: bool = False) -> None:
        super().__init__(input_size, hidden_size, num_layers=num_layers, nonlinearity=nonlinearity, bias=bias,
                         batch_first=True, dropout=dropout, bidirectional=bidirectional)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lead, length, channels = x.shape[:-2], x.shape[-2], x.shape[-1]
        y, h_n = super().forward(x.reshape(-1, length, channels))
        return recurrent_outputs(y, h_n, self.bidirectional, lead, length)
