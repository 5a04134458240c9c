"""Batches as tensors on the training device, made so that the device does not wait for them.

Three ways, one result (the same tensors bit for bit; tests compare them):

- ``host``: each batch is made on the host (``CrossSectionData.batch``) when the step asks for it and
  copied to the device. The CPU's way: there, making a batch is a copy the step would wait for anyway.
- ``prefetch``: a worker thread makes the next batches while the current step runs, into a ring of
  reusable buffers (pinned host memory on CUDA, so the copies to the device are asynchronous,
  ``non_blocking``). A buffer is refilled only after the device has finished copying out of it (a
  CUDA event per buffer). The default on CUDA when the features do not fit on the device.
- ``device``: the normalised features, masks and labels are copied to the device once and every
  batch is gathered there (windows are slices of one tensor): no host work and no copies per step.
  The default on CUDA when they take at most half of the device's free memory.

``FeedStats`` counts the bytes copied from the host per batch (bench/gpu.py reports them).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from studio.data.dataset import CrossSectionData
from studio.train.config import FEEDS

#: buffers of the prefetch ring: one being copied to the device, one ready, one being filled
RING = 3


@dataclass
class FeedStats:
    batches: int = 0
    host_to_device_bytes: int = 0

    @property
    def bytes_per_batch(self) -> float:
        return self.host_to_device_bytes / self.batches if self.batches else 0.0


Tensors = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def device_bytes_needed(data: CrossSectionData) -> int:
    """What the ``device`` feed keeps on the device: features, mask, labels."""
    d, s = data.mask.shape
    return int(data.features.nbytes) + d * s * (1 + 4 + 1)


def choose_feed(data: CrossSectionData, device: torch.device, wanted: str = "auto") -> str:
    if wanted not in FEEDS:
        raise ValueError(f"feed: expects one of {', '.join(FEEDS)}, gets {wanted!r}")
    if wanted != "auto":
        return wanted
    if device.type != "cuda":
        return "host"
    free, _ = torch.cuda.mem_get_info(device)
    return "device" if device_bytes_needed(data) <= free // 2 else "prefetch"


class Feed:
    """``batches(dates, dates_per_batch)`` yields (x, mask, label, has_label) on ``device``."""

    def __init__(self, data: CrossSectionData, device: torch.device, kind: str = "auto",
                 max_dates: int = 1) -> None:
        self.data, self.device = data, device
        self.kind = choose_feed(data, device, kind)
        self.stats = FeedStats()
        self.max_dates = max(1, max_dates)
        self._resident: dict[str, torch.Tensor] | None = None
        self._ring: list[torch.Tensor] | None = None

    # ---- the three ways ------------------------------------------------------------------------------
    def batches(self, dates: Sequence[int], dates_per_batch: int) -> Iterator[Tensors]:
        dates = np.asarray(dates, dtype=np.int64)
        chunks = [dates[i:i + dates_per_batch] for i in range(0, len(dates), dates_per_batch)]
        if self.kind == "device":
            for chunk in chunks:
                yield self._gather(chunk)
        elif self.kind == "prefetch":
            yield from self._prefetched(chunks)
        else:
            for chunk in chunks:
                yield self._to_device(self.data.batch(chunk))

    def _to_device(self, batch, x: torch.Tensor | None = None) -> Tensors:
        """The batch's arrays as tensors on the device; ``x``: its windows already in a (pinned) tensor."""
        arrays = (batch.x, batch.mask, batch.label, batch.has_label)
        self.stats.batches += 1
        self.stats.host_to_device_bytes += sum(int(a.nbytes) for a in arrays)
        host = [torch.from_numpy(a) for a in arrays]
        if x is not None:
            host[0] = x
        if self.device.type == "cpu":
            return tuple(host)  # type: ignore[return-value]
        return tuple(t.to(self.device, non_blocking=True) for t in host)  # type: ignore[return-value]

    # ---- device: everything resident ----------------------------------------------------------------
    def _gather(self, dates: np.ndarray) -> Tensors:
        if self._resident is None:
            data = self.data
            label = np.where(data.has_label, data.label, 0.0).astype(np.float32)
            self._resident = {"features": torch.from_numpy(np.asarray(data.features)).to(self.device),
                              "mask": torch.from_numpy(data.mask).to(self.device),
                              "label": torch.from_numpy(label).to(self.device),
                              "has_label": torch.from_numpy(data.has_label).to(self.device)}
            self.stats.host_to_device_bytes += sum(int(t.nbytes) for t in self._resident.values())
        r = self._resident
        p, length = self.data.panel.bars_per_day, self.data.window_length
        index = torch.from_numpy(dates).to(self.device)
        x = torch.stack([r["features"][:, (int(d) + 1) * p - length:(int(d) + 1) * p] for d in dates])
        mask = r["mask"][index]
        # masked stocks are zeros, as on the host (their windows may hold NaN; NaN * 0 would stay NaN)
        x = torch.where(mask[:, :, None, None], x, torch.zeros((), dtype=x.dtype, device=x.device))
        self.stats.batches += 1
        self.stats.host_to_device_bytes += int(index.nbytes)
        return x, mask, r["label"][index], r["has_label"][index]

    # ---- prefetch: a worker thread fills a ring of (pinned) buffers ---------------------------------
    def _buffers(self) -> list[torch.Tensor]:
        if self._ring is None:
            s, f = self.data.panel.n_symbols, len(self.data.config.features)
            shape = (self.max_dates, s, self.data.window_length, f)
            pin = self.device.type == "cuda"
            self._ring = [torch.empty(shape, dtype=torch.float32, pin_memory=pin) for _ in range(RING)]
        return self._ring

    def _prefetched(self, chunks: list[np.ndarray]) -> Iterator[Tensors]:
        ring = self._buffers()
        if any(len(c) > len(ring[0]) for c in chunks):
            raise ValueError(f"a batch of more than {len(ring[0])} dates (the feed's max_dates)")
        free: queue.Queue = queue.Queue()
        for slot in range(RING):
            free.put((slot, None))
        ready: queue.Queue = queue.Queue(maxsize=RING - 1)
        stop = threading.Event()

        def fill() -> None:
            try:
                for chunk in chunks:
                    slot, copied = free.get()
                    if stop.is_set():
                        return
                    if copied is not None:
                        copied.synchronize()  # the device has read this buffer: it can be refilled
                    ready.put((slot, self.data.batch(chunk, out=ring[slot].numpy())))
            except BaseException as exc:  # handed to the consumer, which raises it
                ready.put((None, exc))
                return
            ready.put((None, None))

        worker = threading.Thread(target=fill, name="studio-feed", daemon=True)
        worker.start()
        try:
            while True:
                slot, batch = ready.get()
                if slot is None:
                    if batch is not None:
                        raise batch
                    return
                x = ring[slot][:len(batch.dates)]
                copied = None
                if self.device.type == "cuda":
                    tensors = self._to_device(batch, x)
                    copied = torch.cuda.Event()
                    copied.record(torch.cuda.current_stream(self.device))
                else:  # on the CPU the step would read the buffer itself: it gets a copy
                    tensors = self._to_device(batch, x.clone())
                free.put((slot, copied))
                yield tensors
        finally:
            stop.set()
            for slot in range(RING):  # wake the worker if it waits for a buffer
                free.put((slot, None))
            while worker.is_alive():
                with contextlib.suppress(queue.Empty):  # let a worker blocked on a full queue finish
                    ready.get(timeout=0.05)
            worker.join()
