"""The import policies are stages (studio.data.import_stages.IMPORT_STAGES, gather / decide / apply):
one more policy is one more stage in that table, and it runs the same in memory and bucket by bucket on
disk."""

from __future__ import annotations

import numpy as np

from studio.data import import_stages
from studio.data.import_stages import IMPORT_STAGES, DuplicatesStage, ImportStage, ImportState, Rows
from tests.test_import_chunked import assert_same_panel, in_memory, long_file, on_disk


class DropSymbolStage(ImportStage):
    """A policy as a later feature would add one: every row of one symbol dropped, counted and said."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol

    def applies(self, state: ImportState) -> bool:
        return self.symbol in state.names

    def apply(self, state: ImportState, rows: Rows) -> int:
        dropped = rows.sym == state.names.index(self.symbol)
        rows.keep(~dropped)
        return int(dropped.sum())

    def gather(self, state: ImportState, seen: list) -> None:
        state.counts[f"rows of {self.symbol} dropped"] = sum(seen)
        state.notes.append(f"{self.symbol} dropped ({sum(seen)} rows)")


def test_an_added_stage_runs_at_its_place_in_memory_and_bucket_by_bucket(tmp_path, monkeypatch):
    path = long_file(tmp_path / "bars.csv")  # BBB, AAA, CCC: 400 rows each
    plain = in_memory(path)
    after_duplicates = next(i for i, s in enumerate(IMPORT_STAGES) if isinstance(s, DuplicatesStage)) + 1
    monkeypatch.setattr(import_stages, "IMPORT_STAGES", (*IMPORT_STAGES[:after_duplicates], DropSymbolStage("BBB"),
                                                         *IMPORT_STAGES[after_duplicates:]))
    panel = in_memory(path)

    assert plain.symbols == ["AAA", "BBB", "CCC"] and panel.symbols == ["AAA", "CCC"]
    np.testing.assert_array_equal(panel.values, plain.values[[0, 2]])  # the other symbols' bars untouched
    np.testing.assert_array_equal(panel.traded, plain.traded[[0, 2]])
    # its note and count come where the stage runs: right after the duplicates policy's
    duplicates_note = next(i for i, n in enumerate(panel.notes) if n.startswith("duplicate timestamps"))
    assert panel.notes[duplicates_note + 1] == "BBB dropped (400 rows)"
    keys = list(panel.counts)
    assert keys[keys.index("duplicate timestamps dropped (last kept)") + 1] == "rows of BBB dropped"
    assert panel.counts["rows of BBB dropped"] == 400 and panel.counts["rows read"] == 1200
    assert panel.counts["symbols without a traded day dropped"] == 1
    # the same stage over 1 and 3 buckets on disk: the same panel, bit for bit
    for buckets in (1, 3):
        assert_same_panel(panel, on_disk([path], tmp_path, f"buckets{buckets}", buckets, source=panel.source))
