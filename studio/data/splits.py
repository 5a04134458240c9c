"""Date splits: train / valid / test in time order, with a gap so that no label reaches across.

The label of date t covers the closes of days t + lag .. t + lag + horizon. With a gap of at least
``lag + horizon`` dates between the last date of one split and the first of the next, every label of
the earlier split is known before the later split's first decision (Qlib's RollingGen truncates by
horizon + 1 for the same reason).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SPLIT_NAMES = ("train", "valid", "test")


@dataclass(frozen=True)
class Splits:
    """Date indices (into the panel's dates) of each split, ascending."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    gap: int

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in SPLIT_NAMES:
            raise KeyError(name)
        return getattr(self, name)

    def items(self):
        return [(name, self[name]) for name in SPLIT_NAMES]

    def describe(self, dates: np.ndarray | None = None) -> dict[str, dict]:
        out = {}
        for name, idx in self.items():
            entry: dict = {"dates": len(idx)}
            if len(idx) and dates is not None:
                entry["first"], entry["last"] = str(dates[idx[0]]), str(dates[idx[-1]])
            out[name] = entry
        return out


def split_dates(usable: np.ndarray, fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
                gap: int = 2) -> Splits:
    """Cut the usable date indices (ascending) into train / valid / test by the given fractions, and
    drop ``gap`` dates before valid and before test."""
    usable = np.asarray(usable, dtype=np.int64)
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not 0.99 < sum(fractions) < 1.01:
        raise ValueError(f"split fractions must be three shares summing to 1, gets {fractions}")
    if gap < 0:
        raise ValueError(f"gap must be >= 0, gets {gap}")
    n = len(usable) - 2 * gap
    if n < 3:
        raise ValueError(f"{len(usable)} usable dates are too few to split with a gap of {gap}")
    n_train = max(1, round(n * fractions[0]))
    n_valid = max(1, round(n * fractions[1]))
    n_test = n - n_train - n_valid
    if n_test < 1:
        n_train -= 1 - n_test
        n_test = 1
    train = usable[:n_train]
    valid = usable[n_train + gap:n_train + gap + n_valid]
    test = usable[n_train + 2 * gap + n_valid:]
    return Splits(train, valid, test, gap)


def walk_forward(usable: np.ndarray, folds: int, valid_dates: int, test_dates: int, gap: int = 2,
                 train_dates: int | None = None) -> list[Splits]:
    """Walk-forward folds ending at the last usable date: each fold's test window follows the
    previous fold's; train is expanding (or the last ``train_dates`` dates when given)."""
    usable = np.asarray(usable, dtype=np.int64)
    if folds < 1 or valid_dates < 1 or test_dates < 1:
        raise ValueError("folds, valid_dates and test_dates must be >= 1")
    out = []
    for k in range(folds):
        test_end = len(usable) - (folds - 1 - k) * test_dates
        test_start = test_end - test_dates
        valid_end = test_start - gap
        valid_start = valid_end - valid_dates
        train_end = valid_start - gap
        train_start = 0 if train_dates is None else max(0, train_end - train_dates)
        if train_end - train_start < 1:
            raise ValueError(f"fold {k + 1} of {folds} has no training dates ({len(usable)} usable dates)")
        out.append(Splits(usable[train_start:train_end], usable[valid_start:valid_end],
                          usable[test_start:test_end], gap))
    return out
