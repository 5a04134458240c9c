"""How many dates a training step can hold: a probe of a step's activation bytes and the free memory of
the device (``dates_per_batch = "auto"``, and the check of an explicit setting; docs/training.md).

A step of D dates of N stocks keeps about D x N x (the bytes autograd saves per stock and date) for its
backward. The probe runs the model's forward on one date of a few stocks (random windows, the model in
training mode, the run's autocast) under ``torch.autograd.graph.saved_tensors_hooks`` and sums the bytes of
the distinct tensors saved: exact for what the forward keeps, and cheap. A step's peak is that plus the
gradients in flight during the backward: measured at 1.2-1.7x the saved bytes on the gallery's kinds of
graph (bench: peak RSS of one step of 400-1,000 stocks), so STEP_PEAK_FACTOR is 2. The probe leaves no
trace: the model's buffers (batch-norm statistics) and the random generators are given back as they were.

Free memory: on the CPU, MemAvailable of /proc/meminfo, or less where the process's cgroup has a memory
limit; on CUDA, the device's free memory plus what torch holds cached but unused. HEADROOM of it is kept
for everything else (the scoring pass, the allocator's slack, the rest of the desktop).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

#: dates per batch that "auto" picks at most: the seed's setting, which the studio's figures were tuned
#: with (more dates per step means fewer steps per epoch, which changes the training, not only its speed)
AUTO_MOST_DATES = 4
#: the share of the free memory a step may take (the rest is headroom)
USABLE_SHARE = 0.5
#: a step's peak over what its forward saves (the gradients in flight during the backward)
STEP_PEAK_FACTOR = 2.0
#: stocks of the one date the probe runs (the bytes scale with the stocks: every layer is per stock or a
#: kernel along the stocks)
PROBE_STOCKS = 8


class BatchTooLarge(Exception):
    """An explicit dates_per_batch (or even one date) cannot fit the free memory; one line."""


@dataclass(frozen=True)
class BatchChoice:
    """What was asked, what was chosen and why: recorded with the run and said in its start line."""

    asked: int | str
    dates: int
    date_bytes: int  # a step's bytes per date (activations of every stock, at their peak)
    fixed_bytes: int  # the gradients and the optimiser's state, whatever the batch
    free_bytes: int | None  # None: the free memory could not be read (no check was made)
    where: str  # "RAM" or "GPU memory"

    def step_bytes(self, dates: int | None = None) -> int:
        return (self.dates if dates is None else dates) * self.date_bytes + self.fixed_bytes

    def line(self) -> str:
        """'dates per batch: auto -> 3 (a step needs ~2.1 GB, 7.9 GB of RAM free)'"""
        free = f"{gb(self.free_bytes)} of {self.where} free" if self.free_bytes is not None else (
            f"free {self.where} unknown")
        head = f"auto -> {self.dates}" if self.asked == "auto" else str(self.dates)
        return f"dates per batch: {head} (a step needs ~{gb(self.step_bytes())}, {free})"

    def to_json(self) -> dict:
        return {"asked": self.asked, "dates_per_batch": self.dates, "step_bytes": self.step_bytes(),
                "date_bytes": self.date_bytes, "free_bytes": self.free_bytes, "where": self.where,
                "line": self.line()}


def gb(n: float) -> str:
    """Bytes as the start line shows them: '2.1 GB', '350 MB'."""
    if n >= 1e9:
        return f"{n / 1e9:.1f} GB"
    return f"{max(n, 0) / 1e6:.0f} MB" if n >= 1e6 else f"{max(n, 0) / 1e3:.0f} kB"


def choose(asked: int | str, date_bytes: int, fixed_bytes: int, free_bytes: int | None, where: str,
           available_dates: int) -> BatchChoice:
    """The dates per batch for ``asked`` ("auto" or a number): "auto" takes the most dates, up to
    AUTO_MOST_DATES and the training dates there are, whose step fits USABLE_SHARE of the free memory;
    a number is kept if it fits. BatchTooLarge when it does not, or when not even one date fits."""
    most = AUTO_MOST_DATES if asked == "auto" else int(asked)
    most = max(1, min(most, available_dates)) if asked == "auto" else most
    if free_bytes is None:  # nothing to check against: the setting, or auto's usual number
        return BatchChoice(asked, most, date_bytes, fixed_bytes, None, where)
    usable = free_bytes * USABLE_SHARE
    fits = int((usable - fixed_bytes) // date_bytes) if date_bytes > 0 else most
    choice = BatchChoice(asked, max(1, min(most, fits)), date_bytes, fixed_bytes, free_bytes, where)
    if fits < 1:
        raise BatchTooLarge(f"a step of one date needs ~{gb(choice.step_bytes(1))}, more than half the "
                            f"{gb(free_bytes)} of {where} free: fewer stocks, a shorter window (--days, "
                            "--bars-per-day) or a smaller model")
    if asked != "auto" and int(asked) > fits:
        raise BatchTooLarge(f"dates_per_batch {asked}: a step needs ~{gb(choice.step_bytes(int(asked)))}, more "
                            f"than half the {gb(free_bytes)} of {where} free; the largest that fits is {fits} "
                            "(or auto)")
    return choice


def probe_date_bytes(model: torch.nn.Module, window: int, features: int, stocks: int, device: torch.device,
                     autocast) -> int:
    """Bytes a training step keeps per date of ``stocks`` stocks at its peak (measured on PROBE_STOCKS)."""
    probe = max(1, min(stocks, PROBE_STOCKS))
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1, probe, window, features, generator=generator).to(device)
    mask = torch.ones(1, probe, dtype=torch.bool, device=device)
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    cpu_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if device.type == "cuda" else None
    saved: dict[tuple, int] = {}

    def keep(tensor: torch.Tensor) -> torch.Tensor:
        if not isinstance(tensor, torch.nn.Parameter):  # the weights are there anyway
            storage = tensor.untyped_storage()
            saved[(tensor.device, storage.data_ptr())] = storage.nbytes()
        return tensor

    was_training = model.training
    try:
        model.train()
        with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor), autocast:
            model(x, mask)
    finally:
        model.train(was_training)
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)
    return math.ceil(sum(saved.values()) / probe * stocks * STEP_PEAK_FACTOR)


def free_memory(device: torch.device) -> int | None:
    """Bytes free for this process on ``device`` (None where it cannot be read)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free + torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device))
    available = _meminfo_available()
    limit = _cgroup_room()
    if available is None:
        return limit
    return available if limit is None else min(available, limit)


def _read_small(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            return fh.read(65536)
    except OSError:
        return None


def _meminfo_available() -> int | None:
    text = _read_small("/proc/meminfo")
    for line in (text or "").splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    return None


def _cgroup_room() -> int | None:
    """What the cgroup's memory limit leaves (v2, then v1); None without a limit."""
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_small(limit_file), _read_small(usage_file)
        if limit is None or usage is None:
            continue
        limit, usage = limit.strip(), usage.strip()
        if not limit.isdigit() or not usage.isdigit() or int(limit) >= 1 << 60:  # "max", or v1's "no limit"
            return None
        return max(0, int(limit) - int(usage))
    return None
