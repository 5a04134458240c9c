"""A run's ``preprocess.json``: what turns raw bars into its model's input, written with the run and
read back (checked) by ``studio predict``, ``reproduce`` and ``export --run``.

    {"format": 1, "features": [...], "days": int, "bars_per_day": int, "volume_days": int,
     "normalize": "robust" | "cs_zscore" | "cs_rank" | "none", "median": [...] | null, "mad": [...] | null,
     "lag": int, "horizon": int, "fields": [raw fields the features read], "source": {config.json's data.source}}

``median`` / ``mad`` are the robust statistics fitted on the run's training dates (config.json's
``data.robust_stats``), one per feature; null unless ``normalize`` is robust. studio.data.preprocess
applies the file; this module makes and checks it (a file from anywhere is hostile: every field is
checked, and a bad one is refused in one line naming the file and the field).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from studio.data.errors import DataError
from studio.data.preprocess import NORMALISATIONS

SPEC_FILE = "preprocess.json"
FORMAT = 1
#: a preprocess.json is small (a few numbers per feature); a larger one is not one
SPEC_LIMIT = 1 << 20
_INT_FIELDS = {"days": 1, "bars_per_day": 1, "volume_days": 1, "lag": 0, "horizon": 1}


def make_spec(config: Any, bars_per_day: int, stats: dict | None, source: dict) -> dict:
    """The spec of a run from its DataConfig, its panel's bars per day, the statistics its data fitted
    (``{"median": [...], "mad": [...]}`` for robust) and config.json's ``data.source``."""
    robust = config.normalize == "robust"
    if robust and not (stats and "median" in stats and "mad" in stats):
        raise DataError("preprocess.json: a robust run has no fitted median and MAD to record")
    return {
        "format": FORMAT,
        "features": list(config.features),
        "days": int(config.days),
        "bars_per_day": int(bars_per_day),
        "volume_days": int(config.volume_days),
        "normalize": config.normalize,
        "median": [float(v) for v in stats["median"]] if robust else None,
        "mad": [float(v) for v in stats["mad"]] if robust else None,
        "lag": int(config.lag),
        "horizon": int(config.horizon),
        "fields": fields_of(config.features),
        "source": dict(source),
    }


def fields_of(features: list[str]) -> list[str]:
    """The raw fields the features read: each feature's own, and close (prices are scaled by the
    previous day's close)."""
    return list(dict.fromkeys([*features, "close"]))


def load_spec(path: str | os.PathLike[str]) -> dict:
    """The checked spec in ``path`` (a run's preprocess.json); DataError naming the file and field."""
    from studio.core.owned_dir import read_json
    from studio.core.text import printable

    where = printable(str(path))
    try:
        data = read_json(path, SPEC_LIMIT, "run")
    except FileNotFoundError:
        raise DataError(f"{where}: missing (a run trained before preprocess.json was recorded: "
                        "train it again)") from None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise DataError(f"{where}: cannot be read ({exc})") from None
    return check_spec(data, where)


def check_spec(data: Any, where: str = SPEC_FILE) -> dict:
    """``data`` (parsed JSON) as a spec, every field checked."""
    if not isinstance(data, dict):
        raise DataError(f"{where}: not a JSON object")

    def bad(field: str, expects: str) -> DataError:
        from studio.core.text import shown

        return DataError(f"{where}: field {field!r} expects {expects}, gets {shown(repr(data.get(field)))}")

    if data.get("format") != FORMAT or isinstance(data.get("format"), bool):
        raise bad("format", f"{FORMAT} (a newer studio wrote it?)")
    features = data.get("features")
    if (not isinstance(features, list) or not features or not all(isinstance(f, str) and f for f in features)
            or len(set(features)) != len(features)):
        raise bad("features", "a list of distinct feature names")
    for name, least in _INT_FIELDS.items():
        value = data.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < least or value > 1_000_000:
            raise bad(name, f"a whole number >= {least}")
    if data.get("normalize") not in NORMALISATIONS:
        raise bad("normalize", f"one of {', '.join(NORMALISATIONS)}")
    for name in ("median", "mad"):
        value = data.get(name)
        if data["normalize"] != "robust":
            if value is not None:
                raise bad(name, "null (normalize is not robust)")
            continue
        if (not isinstance(value, list) or len(value) != len(features)
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                           for v in value)):
            raise bad(name, f"{len(features)} finite numbers (one per feature)")
        if name == "mad" and not all(v > 0 for v in value):
            raise bad(name, "positive numbers")
    if data.get("fields") != fields_of(features):
        raise bad("fields", f"the fields of its features, {fields_of(features)}")
    if not isinstance(data.get("source"), dict):
        raise bad("source", "an object (the run's data source)")
    return {key: data[key] for key in ("format", "features", "days", "bars_per_day", "volume_days",
                                       "normalize", "median", "mad", "lag", "horizon", "fields", "source")}


def spec_path(run_dir: str | os.PathLike[str]) -> Path:
    return Path(run_dir) / SPEC_FILE
