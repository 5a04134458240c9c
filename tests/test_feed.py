"""Batches reach the device three ways (made on demand, prefetched by a thread, gathered from resident
features): the same tensors bit for bit, and a prefetch cut short leaves no thread behind."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from studio.data.dataset import CrossSectionData, DataConfig
from studio.train.feed import Feed, choose_feed, device_bytes_needed
from tests.test_dataset import make_panel


@pytest.fixture(scope="module")
def data():
    return CrossSectionData(make_panel(), DataConfig(days=5, min_stocks=5))


def collect(feed: Feed, dates, per_batch):
    return [tuple(t.clone() for t in batch) for batch in feed.batches(dates, per_batch)]


def test_the_three_feeds_give_the_same_batches(data):
    dates = np.array(data.splits.train)[::-1].copy()  # any order, a short last batch
    want = collect(Feed(data, torch.device("cpu"), "host"), dates, 4)
    assert len(want) == -(-len(dates) // 4)
    for kind in ("prefetch", "device"):
        feed = Feed(data, torch.device("cpu"), kind, max_dates=4)
        got = collect(feed, dates, 4)
        assert len(got) == len(want), kind
        for a, b in zip(got, want, strict=True):
            for x, y in zip(a, b, strict=True):
                assert x.dtype == y.dtype and x.shape == y.shape
                assert x.numpy().tobytes() == y.numpy().tobytes(), kind  # bit for bit
        assert feed.stats.batches == len(want)
    first = want[0]
    batch = data.batch(dates[:4])
    assert np.array_equal(first[0].numpy(), batch.x) and np.array_equal(first[1].numpy(), batch.mask)
    assert not first[0].isnan().any()  # masked stocks are zeros, not NaN


def test_host_to_device_bytes_are_counted(data):
    dates = np.array(data.splits.train[:8])
    host = Feed(data, torch.device("cpu"), "host")
    collect(host, dates, 4)
    b = data.batch(dates[:4])
    assert host.stats.bytes_per_batch == b.x.nbytes + b.mask.nbytes + b.label.nbytes + b.has_label.nbytes
    resident = Feed(data, torch.device("cpu"), "device")
    collect(resident, dates, 4)
    assert resident.stats.host_to_device_bytes >= device_bytes_needed(data)  # once, then indices only
    before = resident.stats.host_to_device_bytes
    collect(resident, dates, 4)
    assert resident.stats.host_to_device_bytes - before == 2 * 4 * 8  # two batches of four int64 indices


def test_a_prefetch_cut_short_stops_its_thread(data):
    feed = Feed(data, torch.device("cpu"), "prefetch", max_dates=2)
    batches = feed.batches(np.array(data.splits.train), 2)
    next(batches)
    batches.close()
    assert not [t for t in threading.enumerate() if t.name == "studio-feed"]
    with pytest.raises(ValueError, match="max_dates"):
        next(feed.batches(np.array(data.splits.train), 3))


def test_auto_is_host_on_the_cpu_and_bad_names_are_refused(data):
    assert choose_feed(data, torch.device("cpu")) == "host"
    with pytest.raises(ValueError, match="feed: expects one of"):
        choose_feed(data, torch.device("cpu"), "gpu")


def test_the_gpu_bench_exits_0_without_cuda():
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu.py")], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "no CUDA device" in done.stdout
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"cuda": False}


def test_feed_and_sync_every_from_the_command_line(tmp_path, capsys):
    from studio.cli import main
    from tests.conftest import GRAPHS

    code = main(["train", str(GRAPHS / "default.json"), "--synthetic", "stocks=30", "--synthetic", "days=60",
                 "--epochs", "1", "--feed", "prefetch", "--sync-every", "5", "--out", str(tmp_path), "-q"])
    assert code == 0, capsys.readouterr().err
    import json

    (config_file,) = tmp_path.glob("*/config.json")
    config = json.loads(config_file.read_text())
    assert config["training"]["feed"] == "prefetch" and config["training"]["sync_every"] == 5
    assert config["feed"] == "prefetch"
    assert main(["train", str(GRAPHS / "default.json"), "--sync-every", "-1"]) == 2
    assert "sync_every: expects an integer >= 0" in capsys.readouterr().err
