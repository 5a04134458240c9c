"""Training losses on whole cross-sections: scores (B, N), labels (B, N), weight (B, N) = has a label.

- ``mse``: mean squared error against the (cross-sectionally normalised) label;
- ``ic``: minus the mean over dates of the Pearson correlation of score and label (the IC loss);
- ``rank``: a pairwise ranking loss (RankNet): for pairs of stocks of one date, the logistic loss of
  ordering them by score as their labels are ordered; up to ``RANK_PAIRS`` random partners per stock.
"""

from __future__ import annotations

import torch

RANK_PAIRS = 32


def mse_loss(scores: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    w = weight.to(scores.dtype)
    return ((scores - labels) ** 2 * w).sum() / w.sum().clamp(min=1)


def ic_loss(scores: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    w = weight.to(scores.dtype)
    n = w.sum(dim=1)
    usable = n >= 2
    n = n.clamp(min=1)
    s = scores - (scores * w).sum(dim=1, keepdim=True) / n[:, None]
    y = labels - (labels * w).sum(dim=1, keepdim=True) / n[:, None]
    s, y = s * w, y * w
    cov = (s * y).sum(dim=1)
    denom = torch.sqrt((s * s).sum(dim=1) * (y * y).sum(dim=1) + 1e-12)
    ic = cov / denom
    return -(ic * usable).sum() / usable.sum().clamp(min=1)


def rank_loss(scores: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor,
              generator: torch.Generator | None = None) -> torch.Tensor:
    batch, stocks = scores.shape
    partners = min(RANK_PAIRS, max(stocks - 1, 1))
    index = torch.randint(0, stocks, (batch, stocks, partners), generator=generator, device="cpu")
    index = index.to(scores.device)
    other_s = torch.gather(scores.unsqueeze(1).expand(batch, stocks, stocks), 2, index)
    other_y = torch.gather(labels.unsqueeze(1).expand(batch, stocks, stocks), 2, index)
    other_w = torch.gather(weight.unsqueeze(1).expand(batch, stocks, stocks), 2, index)
    sign = torch.sign(labels.unsqueeze(-1) - other_y)
    valid = (weight.unsqueeze(-1) & other_w & (sign != 0)).to(scores.dtype)
    margin = (scores.unsqueeze(-1) - other_s) * sign
    loss = torch.nn.functional.softplus(-margin) * valid
    return loss.sum() / valid.sum().clamp(min=1)


LOSS_FUNCTIONS = {"mse": mse_loss, "ic": ic_loss, "rank": rank_loss}
