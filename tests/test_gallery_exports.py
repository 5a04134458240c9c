"""The .py export and the seeded initial weights of every gallery model stay byte-identical.

Refactors of the builder, the exporter and the node declarations must not change what a user gets. The
manifest holds, per gallery model at seed 0, the SHA-256 of its standalone Python export and of its
state dict (names and tensor bytes in order). A deliberate change to the exports rewrites it with
``python -m tests.test_gallery_exports --write`` and says why in its commit.
"""

from __future__ import annotations

import hashlib
import json
import sys

import pytest

from studio import __version__
from studio.core.graph_file import load_graph
from studio.torchgraph.builder import build
from studio.torchgraph.export import python_source
from tests.conftest import FIXTURES, ROOT, gallery_models

MANIFEST = FIXTURES / "gallery_exports.json"


def fingerprints(path) -> dict[str, str]:
    graph = load_graph(path)
    built = build(graph, seed=0)
    weights = hashlib.sha256()
    for name, tensor in built.module.state_dict().items():
        weights.update(name.encode())
        weights.update(tensor.detach().contiguous().numpy().tobytes())
    return {"python": hashlib.sha256(python_source(built, graph).encode()).hexdigest(),
            "weights": weights.hexdigest()}


def _name(path) -> str:
    return path.relative_to(ROOT).as_posix()


def _manifest() -> dict:
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def test_the_manifest_names_every_gallery_model_and_this_version():
    manifest = _manifest()
    assert sorted(manifest["graphs"]) == sorted(_name(p) for p in gallery_models())
    # the export's first line names the version, so a version bump rewrites the manifest on purpose
    assert manifest["studio_version"] == __version__


@pytest.mark.parametrize("path", gallery_models(), ids=_name)
def test_a_gallery_models_export_and_weights_are_unchanged(path):
    assert fingerprints(path) == _manifest()["graphs"][_name(path)], (
        f"{_name(path)}: its export or initial weights changed; if on purpose, run "
        "python -m tests.test_gallery_exports --write")


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    MANIFEST.write_text(json.dumps({"studio_version": __version__,
                                    "graphs": {_name(p): fingerprints(p) for p in gallery_models()}},
                                   indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {MANIFEST}")
