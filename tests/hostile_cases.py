"""The hostile graph files of tests/test_hostile_files.py, made in a folder (also used by
bench/hostile_files.py, so it imports neither pytest nor torch)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

GRAPHS = Path(__file__).resolve().parent.parent / "graphs"
#: valid graphs whose text is hostile
VALID = {"name_surrogate"}

BASE = json.loads((GRAPHS / "residual_blocks.json").read_text(encoding="utf-8"))


def with_block(ref: str) -> dict:
    data = json.loads(json.dumps(BASE))
    data["blocks"]["conv_relu"] = {"path": ref}
    return data


def renamed(node_id: str, name: str = "x") -> dict:
    data = json.loads(json.dumps(BASE))
    data["nodes"][node_id] = data["nodes"].pop("head")
    data["edges"] = [{k: v.replace("head.", f"{node_id}.") for k, v in e.items()} for e in data["edges"]]
    data["name"] = name
    return data


def make_cases(folder: Path) -> dict[str, Path]:
    """name -> the file to read (made in ``folder``, a graph folder with blocks/ and a nested one)."""
    graphs = folder / "project" / "models"
    blocks = graphs / "blocks"
    blocks.mkdir(parents=True)
    shutil.copy(GRAPHS / "blocks" / "conv_relu.json", blocks / "conv_relu.json")
    os.symlink("/dev/zero", blocks / "zero.json")
    os.symlink("/dev/urandom", blocks / "random.json")
    os.mkfifo(blocks / "fifo.json")
    os.symlink("loop_b.json", blocks / "loop_a.json")
    os.symlink("loop_a.json", blocks / "loop_b.json")
    (folder / "secret.json").write_text('{"format": "model-studio.graph", "version": 1, "kind": "block"}')
    os.symlink(folder / "secret.json", blocks / "escape.json")
    os.mkfifo(graphs / "fifo.json")
    os.symlink("/dev/zero", graphs / "zero.json")
    os.symlink("self_loop.json", graphs / "self_loop.json")

    cases = {"fifo": graphs / "fifo.json", "dev_zero": graphs / "zero.json", "self_loop": graphs / "self_loop.json"}

    def write(name: str, data: dict | str) -> None:
        path = graphs / f"{name}.json"
        path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
        cases[name] = path

    write("block_dev_zero", with_block("blocks/zero.json"))
    write("block_dev_random", with_block("blocks/random.json"))
    write("block_fifo", with_block("blocks/fifo.json"))
    write("block_loop", with_block("blocks/loop_a.json"))
    write("block_nul", with_block("blocks/conv\x00relu.json"))
    write("block_escape_by_dotdot", with_block("../../secret.json"))
    write("block_escape_by_symlink", with_block("blocks/escape.json"))
    write("block_absolute", with_block(str(blocks / "conv_relu.json")))
    write("id_surrogate", renamed("\ud800"))
    write("id_terminal_escape", renamed("a\x1b]0;pwned\x07", name="\x1b[2J\x1b]2;title\x07\x9b31m"))
    write("name_surrogate", renamed("head", name="\udcff"))
    write("v0_int_ids", {"format": "model-studio.graph", "version": 0,
                         "window": {"features": ["close"], "days": 1, "bars": 4},
                         "nodes": [{"id": 1, "type": "input"}, {"id": "b", "type": "output"}],
                         "links": [[1, "bars", "b", "x"]]})
    text = json.dumps(BASE, indent=2).replace('"kernel_size": 4,', '"kernel_size": 4, "kernel_size": 5,')
    assert text.count('"kernel_size"') == 2
    write("duplicate_key", text)
    big = graphs / "big.json"
    with open(big, "wb") as fh:
        fh.truncate(60_000_000)  # sparse: larger than the limit on disk, costs no space
    cases["too_large"] = big
    return cases


