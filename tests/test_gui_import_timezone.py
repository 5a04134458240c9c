"""The import dialog's time zone (issue 25 item 3): stamps with a zone are read in the exchange's, which
the dialog shows, and where the sessions do not tell it the user names it in the dialog, as
`--timezone` does on the command line."""

from __future__ import annotations

import pytest

from studio.gui.training import ImportDialog
from tests.test_import_timezones import night_bars, rewrite


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STUDIO_CACHE_DIR", str(tmp_path / "cache"))


@pytest.mark.usefixtures("shared_data")
def test_the_dialog_says_which_zone_it_read_the_bars_in(qtbot, tmp_path):
    dialog = ImportDialog(None, {}, str(rewrite(tmp_path / "zoned", "Z", symbols=("AAPL",))))
    qtbot.addWidget(dialog)
    assert dialog.inspect()
    assert "78 bars per day" in dialog.summary.text()
    assert "read as America/New_York wall-clock time (inferred" in dialog.report.toPlainText()
    assert "timezone" not in dialog.settings()


def test_a_zone_the_sessions_do_not_tell_is_named_in_the_dialog(qtbot, tmp_path):
    dialog = ImportDialog(None, {}, str(night_bars(tmp_path / "night")))
    qtbot.addWidget(dialog)
    dialog.show()
    assert not dialog.inspect()
    assert "carry a time zone" in dialog.summary.text() and "Import bars, time zone" in dialog.summary.text()
    qtbot.keyClicks(dialog.timezone, "UTC")
    assert dialog.inspect() and "24 bars per day" in dialog.summary.text()
    assert dialog.settings()["timezone"] == "UTC"
    assert "as set with --timezone" in dialog.report.toPlainText()
    # the settings come back to a dialog opened again
    again = ImportDialog(None, dialog.settings(), dialog.path.text())
    qtbot.addWidget(again)
    assert again.timezone.text() == "UTC"
