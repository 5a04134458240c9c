"""Transformer pieces for the (B, N, L, C) layout: the encoder stack, positional encodings, learned CLS and
SEP tokens. Every stock's sequence is one batch row of torch's batch-first layers."""

import math

import torch
import torch.nn as nn


class SeqTransformerEncoder(nn.TransformerEncoder):
    """nn.TransformerEncoder of ``num_layers`` nn.TransformerEncoderLayer (batch first) over a (B, N, L, C)
    sequence, C = d_model; ``final_norm`` adds the stack's closing LayerNorm (usual with norm_first).

    torch clones one layer ``num_layers`` times, so every layer would start with the same weights; here
    each layer is re-initialised on its own, as separately built layers would be.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048, dropout: float = 0.1,
                 activation: str = "relu", layer_norm_eps: float = 1e-5, norm_first: bool = False,
                 bias: bool = True, num_layers: int = 1, final_norm: bool = False) -> None:
        if d_model % nhead:
            raise ValueError(f"nhead {nhead} must divide d_model {d_model}")
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=dim_feedforward, dropout=dropout,
                                           activation=activation, layer_norm_eps=layer_norm_eps,
                                           batch_first=True, norm_first=norm_first, bias=bias)
        norm = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias) if final_norm else None
        super().__init__(layer, num_layers, norm=norm, enable_nested_tensor=False)
        for block in self.layers[1:]:
            block.self_attn._reset_parameters()
            block.linear1.reset_parameters()
            block.linear2.reset_parameters()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead, length, channels = x.shape[:-2], x.shape[-2], x.shape[-1]
        y = super().forward(x.reshape(-1, length, channels))
        return y.reshape(*lead, length, channels)


class PositionalEncoding(nn.Module):
    """Adds a position code to every step of a (B, N, L, C) sequence, then dropout.

    ``sinusoidal``: the fixed code of "Attention is all you need", pe[t, 2i] = sin(t / 10000^(2i/C)) and
    pe[t, 2i+1] = cos(t / 10000^(2i/C)), computed for the input's length (no weights). ``learned``: a
    table of ``max_len`` learned vectors (BERT's position embeddings, initialised N(0, 0.02²)); the first
    L are added.
    """

    def __init__(self, d_model: int, mode: str = "sinusoidal", max_len: int | None = None,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if mode not in ("sinusoidal", "learned"):
            raise ValueError(f"unknown mode {mode!r}")
        if mode == "learned" and max_len is None:
            raise ValueError("a learned positional encoding needs max_len")
        self.mode, self.d_model = mode, d_model
        self.weight = nn.Parameter(torch.randn(max_len, d_model) * 0.02) if mode == "learned" else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[-2]
        if self.weight is not None:
            pe = self.weight[:length]
        else:
            position = torch.arange(length, device=x.device, dtype=torch.float32).unsqueeze(1)
            rate = torch.exp(torch.arange(0, self.d_model, 2, device=x.device, dtype=torch.float32)
                             * (-math.log(10000.0) / self.d_model))
            angle = position * rate  # (L, ceil(C / 2))
            pe = torch.stack([angle.sin(), angle.cos()], dim=-1).flatten(-2)[:, :self.d_model].to(x.dtype)
        return self.dropout(x + pe)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, mode={self.mode!r}"


class SpecialTokens(nn.Module):
    """Learned CLS and SEP tokens: (B, N, L, C) -> (B, N, L + cls + sep, C), the CLS vector before the
    first step and the SEP vector after the last (one vector each, shared by every stock and date;
    initialised N(0, 0.02²) as BERT's embeddings)."""

    def __init__(self, d_model: int, cls: bool = True, sep: bool = True) -> None:
        super().__init__()
        if not (cls or sep):
            raise ValueError("add at least one of the CLS and SEP tokens")
        self.cls_token = nn.Parameter(torch.randn(d_model) * 0.02) if cls else None
        self.sep_token = nn.Parameter(torch.randn(d_model) * 0.02) if sep else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        one = (*x.shape[:-2], 1, x.shape[-1])
        parts = [x]
        if self.cls_token is not None:
            parts.insert(0, self.cls_token.to(x.dtype).expand(one))
        if self.sep_token is not None:
            parts.append(self.sep_token.to(x.dtype).expand(one))
        return torch.cat(parts, dim=-2)
