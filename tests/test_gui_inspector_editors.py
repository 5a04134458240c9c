"""The inspector's editors come from one table, parameter class to editor kind (make and show together)."""

from __future__ import annotations

import json

from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QSpinBox

from studio.core.params import BoolParam, FloatParam, IntParam, ListParam, Param
from studio.gui.inspector import (
    EDITORS,
    FloatEditor,
    IntEditor,
    JsonEditor,
    OptionalFloatEditor,
    ParamEditor,
    RecordTableEditor,
    editor_kind,
)
from studio.nodes import default_registry


def every_param() -> list[tuple[str, Param]]:
    return [(f"{node_type.type_id}.{param.name}", param) for node_type in default_registry()
            for param in node_type.params]


def test_every_parameter_of_every_node_type_shows_its_default_without_committing_it(qtbot):
    committed = []
    for where, param in every_param():
        editor = ParamEditor(param, committed.append)
        qtbot.addWidget(editor)
        assert isinstance(editor.kind, editor_kind(param)), where
        assert editor.widget is editor.kind.widget, where
        editor.set_value(param.default)
        assert committed == [], f"{where}: showing a value commits it"
    kinds = {type(ParamEditor(param, committed.append).kind) for _, param in every_param()}
    assert set(EDITORS.values()) | {RecordTableEditor} <= kinds, "every editor kind is in use by a built-in type"


def test_an_optional_parameter_takes_its_own_kind_or_the_plain_one(qtbot):
    assert editor_kind(FloatParam("momentum", 0.1, "", optional=True)) is OptionalFloatEditor
    assert editor_kind(FloatParam("lr", 0.1, "")) is FloatEditor
    assert editor_kind(IntParam("size", None, "", optional=True, min=1)) is IntEditor
    assert editor_kind(ListParam("sizes", [], "", item=IntParam("size", 1, ""))) is JsonEditor

    class Steps(IntParam):  # a pack's own parameter class edits as its base
        pass

    assert editor_kind(Steps("steps", 3, "")) is IntEditor


def test_each_kind_makes_its_control_shows_a_value_and_commits_an_edit(qtbot):
    committed = []
    cases = [
        (IntParam("size", 4, "", min=1, max=64), QSpinBox, 8, lambda w: w.setValue(16), 16),
        (IntParam("size", None, "", optional=True, min=1), QSpinBox, None, lambda w: w.setValue(5), 5),
        (FloatParam("lr", 0.1, "", min=0.0), QDoubleSpinBox, 0.5, lambda w: w.setValue(0.25), 0.25),
        (BoolParam("bias", True, ""), QCheckBox, True, lambda w: w.setChecked(False), False),
    ]
    for param, control, shown, edit, expected in cases:
        committed.clear()
        editor = ParamEditor(param, committed.append)
        qtbot.addWidget(editor)
        assert isinstance(editor.widget, control), param
        editor.set_value(shown)
        assert committed == []
        edit(editor.widget)
        assert committed == [expected], param
    committed.clear()
    sizes = ParamEditor(ListParam("sizes", [], "", item=IntParam("size", 1, "", min=1)), committed.append)
    qtbot.addWidget(sizes)
    sizes.set_value([2, 3])
    assert json.loads(sizes.kind.text.toPlainText()) == [2, 3] and committed == []
    sizes.kind.text.setPlainText("[0]")
    sizes.kind.apply()
    assert committed == [] and sizes.error.text(), "a value the parameter refuses is not committed"
    sizes.kind.text.setPlainText("[4, 5]")
    sizes.kind.apply()
    assert committed == [[4, 5]]
