"""Training settings and data-source specs: plain dataclasses that read from and write to JSON."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from studio.core.validation import DEFAULT_MAX_PARAMS
from studio.train.data_sources import DATA_SOURCES

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "step")
LOSSES = ("mse", "ic", "rank")
DEVICES = ("auto", "cpu", "cuda")
#: how batches reach the device (studio.train.feed; named here, where the config is read without torch)
FEEDS = ("auto", "host", "prefetch", "device")


class ConfigError(Exception):
    """A training setting that cannot be used; one line naming the field."""


#: the float settings: (name, lowest, highest, what the message says is expected). A rate above 10 or a
#: weight decay above 1 is a typo, not an experiment: each step would throw the weights far off
FLOAT_RANGES = (
    ("lr", 0.0, 10.0, "a finite number > 0 and <= 10"),
    ("step_gamma", 0.0, 1.0, "a number in (0, 1]"),
    ("weight_decay", None, 1.0, "a finite number >= 0 and <= 1"),
    ("grad_clip", None, 1e6, "a finite number >= 0 (0: no clipping)"),
    ("max_minutes", None, 1e7, "a finite number >= 0 (0: no limit)"),
)


def _number_in(value: Any, low: float | None, high: float) -> bool:
    """``value`` is a finite real number (not a bool) within ``(low, high]``, or ``[0, high]`` for None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return False
    return (value > low if low is not None else value >= 0) and value <= high


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass
class TrainConfig:
    epochs: int = 20
    #: dates per batch: each batch holds whole cross-sections of this many dates; "auto": the most, up to
    #: 4, whose step fits half the device's free memory (studio.train.memory; the run records its choice)
    dates_per_batch: int | str = "auto"
    optimizer: str = "adam"
    lr: float = 2e-3
    schedule: str = "cosine"
    #: for the step schedule: multiply the learning rate by ``step_gamma`` every ``step_epochs`` epochs
    step_epochs: int = 10
    step_gamma: float = 0.5
    weight_decay: float = 0.0
    #: clip the gradient's global norm to this (0: no clipping)
    grad_clip: float = 1.0
    loss: str = "ic"
    #: stop when the validation IC has not improved for this many epochs (0: never)
    patience: int = 5
    seed: int = 0
    device: str = "auto"
    #: mixed precision on CUDA (bfloat16 autocast); ignored on the CPU
    amp: bool = False
    #: CPU threads for torch (0: one per core)
    threads: int = 0
    #: stop after this many minutes of training (0: no limit); the best epoch so far is kept
    max_minutes: float = 0.0
    #: how batches reach the device (studio.train.feed): auto, host, prefetch or device
    feed: str = "auto"
    #: read the loss back from the device every this many steps (0: every step on the CPU, every 16 on
    #: CUDA, where each read waits for the device)
    sync_every: int = 0
    #: run each recurrent cell's per-step pointwise update compiled by torch.compile (its gate math
    #: fused into one kernel; seconds of compile per cell type, once a process; docs/training.md)
    compile_steps: bool = False
    #: refuse a model with more parameters than this before anything is allocated (--max-params)
    max_params: int = DEFAULT_MAX_PARAMS

    def __post_init__(self) -> None:
        # the float settings first: each a finite number in its range (inf passes "> 0", and a learning
        # rate of inf trains to NaN, then is recorded as null, which no resume can read back)
        for name, low, high, expected in FLOAT_RANGES:
            value = getattr(self, name)
            if not _number_in(value, low, high):
                raise ConfigError(f"{name}: expects {expected}, gets {_shown(value)}")
        checks = [
            ("epochs", self.epochs >= 1, "an integer >= 1"),
            ("dates_per_batch", self.dates_per_batch == "auto" or (
                isinstance(self.dates_per_batch, int) and not isinstance(self.dates_per_batch, bool)
                and self.dates_per_batch >= 1), "auto or an integer >= 1"),
            ("optimizer", self.optimizer in OPTIMIZERS, "one of " + ", ".join(OPTIMIZERS)),
            ("schedule", self.schedule in SCHEDULES, "one of " + ", ".join(SCHEDULES)),
            ("step_epochs", self.step_epochs >= 1, "an integer >= 1"),
            ("loss", self.loss in LOSSES, "one of " + ", ".join(LOSSES)),
            ("patience", self.patience >= 0, "an integer >= 0"),
            ("device", self.device in DEVICES or self.device.startswith("cuda:"),
             "auto, cpu, cuda or cuda:N"),
            ("threads", self.threads >= 0, "an integer >= 0"),
            ("feed", self.feed in FEEDS, "one of " + ", ".join(FEEDS)),
            ("sync_every", self.sync_every >= 0, "an integer >= 0"),
            ("amp", isinstance(self.amp, bool), "true or false"),
            ("compile_steps", isinstance(self.compile_steps, bool), "true or false"),
            ("max_params", isinstance(self.max_params, int) and self.max_params >= 1, "an integer >= 1"),
        ]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"{name}: expects {expected}, gets {getattr(self, name)!r}")

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        return cls(**_known(cls, data, "training"))


@dataclass
class SourceSpec:
    """Where the bars come from: a kind of studio.train.data_sources.DATA_SOURCES (``synthetic``: the
    embedded market, with ``synthetic`` options; ``import``: a file or folder of bars, with ``importer``
    options), ``path`` for a kind that reads files, and the kind's settings under its declared field
    (``settings`` for kinds declared after those two; config.json records it only when it holds any)."""

    kind: str = "synthetic"
    path: str | None = None
    synthetic: dict[str, Any] = field(default_factory=dict)
    importer: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in DATA_SOURCES:
            raise ConfigError(f"data: expects {' or '.join(DATA_SOURCES)}, gets {self.kind!r}")
        if DATA_SOURCES[self.kind].reads_path and not self.path:
            raise ConfigError(f"data: {'an' if self.kind[:1] in 'aeiou' else 'a'} {self.kind} needs a path")

    @classmethod
    def of(cls, kind: str, path: str | None, settings: dict[str, Any]) -> SourceSpec:
        """The spec of ``kind`` with its settings under the field its declaration names."""
        source = DATA_SOURCES.get(kind)
        field_name = source.settings_field if source is not None else "settings"
        return cls(kind, path=path, **{field_name: dict(settings)})

    @property
    def source_settings(self) -> dict[str, Any]:
        return getattr(self, DATA_SOURCES[self.kind].settings_field)

    def describe(self) -> str:
        return DATA_SOURCES[self.kind].describe(self.path, self.source_settings)

    def to_json(self) -> dict:
        data = asdict(self)
        if not data["settings"]:  # the built-in kinds' config.json reads as it always has
            del data["settings"]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SourceSpec:
        return cls(**_known(cls, data, "data source"))


def _known(cls, data: dict[str, Any], what: str) -> dict[str, Any]:
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{what}: unknown setting {unknown[0]!r} (known: {', '.join(sorted(names))})")
    return dict(data)
