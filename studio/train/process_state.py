"""Process-wide settings a training run needs, set for the run and given back after it.

torch's thread count and its global random generators, Python's and numpy's global generators, and
the garbage collector's settings belong to the whole process. A run sets what it needs inside
``run_settings(...)`` and everything is as it was when the block ends (normally, by an exception,
or when the run's generator is closed), so two runs in one process (the studio, a queue, the tests)
do not depend on their order (timm's ``with set_scriptable(True):`` is the model).
"""

from __future__ import annotations

import contextlib
import gc
import random
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class ProcessState:
    threads: int
    torch_rng: torch.Tensor
    cuda_rng: list[torch.Tensor] | None
    python_rng: object
    numpy_rng: dict
    gc_enabled: bool
    gc_threshold: tuple[int, int, int]
    cudnn_benchmark: bool = False

    @classmethod
    def capture(cls) -> ProcessState:
        cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
        return cls(torch.get_num_threads(), torch.get_rng_state(), cuda, random.getstate(),
                   np.random.get_state(legacy=False), gc.isenabled(), gc.get_threshold(),
                   torch.backends.cudnn.benchmark)

    def restore(self) -> None:
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        torch.set_rng_state(self.torch_rng)
        if self.cuda_rng is not None:
            torch.cuda.set_rng_state_all(self.cuda_rng)
        random.setstate(self.python_rng)
        np.random.set_state(self.numpy_rng)
        gc.set_threshold(*self.gc_threshold)
        torch.backends.cudnn.benchmark = self.cudnn_benchmark
        (gc.enable if self.gc_enabled else gc.disable)()


@contextlib.contextmanager
def run_settings(threads: int | None = None, seed: int | None = None,
                 cudnn_benchmark: bool | None = None) -> Iterator[ProcessState]:
    """Inside: torch uses ``threads`` threads (None: as it is), its generators start from ``seed``
    (None: as they are) and cuDNN picks its fastest kernels per shape when ``cudnn_benchmark``. After:
    the state captured on entry, whatever happened inside."""
    saved = ProcessState.capture()
    try:
        if threads is not None and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        if seed is not None:
            torch.manual_seed(seed)
        if cudnn_benchmark is not None:
            torch.backends.cudnn.benchmark = cudnn_benchmark
        yield saved
    finally:
        saved.restore()
