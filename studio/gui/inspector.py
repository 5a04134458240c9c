"""The inspector: every parameter of the selected node with an editor that fits its declaration, its
doc as tooltip, and what the validator derived (shapes, lengths, parameter count, problems)."""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QStyle,
    QStyleOptionComboBox,
    QStylePainter,
    QTableWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from studio.core.document import INPUT_LIMITS, MODEL, id_problem
from studio.core.edits import EditError, set_input_window
from studio.core.params import (
    BoolParam,
    ChoiceParam,
    FloatParam,
    IntOrChoiceParam,
    IntOrPairParam,
    IntParam,
    ListParam,
    Param,
    RecordParam,
    StrParam,
)
from studio.core.validation import INPUT_TYPE, format_count

INT_LIMIT = 2_000_000_000
NO_MODE = "—"
#: a record table's row height, and how many rows it shows at least / at most before it scrolls
ROW_HEIGHT = 26
MIN_ROWS_SHOWN = 4
MAX_ROWS_SHOWN = 8
#: an optional flag's tri-state box: half-checked is null
TRISTATE_VALUES = {Qt.CheckState.Checked: True, Qt.CheckState.Unchecked: False, Qt.CheckState.PartiallyChecked: None}


class ElidedComboBox(QComboBox):
    """A list of choices that shows its current choice cut with an ellipsis when the cell is narrow
    ("cross_s…", not "cr"); the list opens with every choice whole."""

    def paintEvent(self, event) -> None:
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        whole, option.currentText = option.currentText, ""
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        field = self.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                            QStyle.SubControl.SC_ComboBoxEditField, self).adjusted(1, 0, -2, 0)
        text = self.fontMetrics().elidedText(whole, Qt.TextElideMode.ElideRight, field.width())
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(field, int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter), text)


def short_header(name: str) -> str:
    """A table column's header: the field's first word (hidden_size: hidden); its tooltip has it all."""
    return name.split("_")[0] or name


class RecordTable(QWidget):
    """A list of records (the cell stack's layers) as a table: one row per item, one column per
    field, each cell with the editor its declaration asks for (a spin box for a number, a list of
    choices for a choice; a short list of choices gets one column per entry, "—" for none), and
    buttons to add, remove and move rows. Every change is checked against the declaration and
    committed as the whole list; what is refused is said under the table."""

    def __init__(self, param: ListParam, commit, show_error) -> None:
        super().__init__()
        assert isinstance(param.item, RecordParam)
        self.param, self.commit, self.show_error = param, commit, show_error
        self.fields = list(param.item.fields)
        #: (field, index in its list or None, header)
        self.columns: list[tuple[Param, int | None, str]] = []
        for f in self.fields:
            if isinstance(f, ListParam) and isinstance(f.item, ChoiceParam) and f.max_items and f.max_items <= 4:
                for i in range(f.max_items):
                    self.columns.append((f, i, f"{short_header(f.name).rstrip('s')} {i + 1}"))
            else:
                self.columns.append((f, None, short_header(f.name)))
        self.table = QTableWidget(0, len(self.columns))
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.table.setHorizontalHeaderLabels([header for _, _, header in self.columns])
        for c, (f, _, _) in enumerate(self.columns):
            self.table.horizontalHeaderItem(c).setToolTip(f"{f.name}: {f.doc}\naccepts {f.describe()}")
        self.table.verticalHeader().setDefaultSectionSize(ROW_HEIGHT)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        # the columns share the inspector's width (no sideways scrolling; a cut choice shows whole in
        # its list and tooltip), and the table is tall enough for four layers at least
        header = self.table.horizontalHeader()
        header.setMinimumSectionSize(30)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        number_width = self.fontMetrics().horizontalAdvance("0000") + 12
        for c, (f, _, _) in enumerate(self.columns):  # numbers get room for 4 digits, choices share the rest
            if isinstance(f, IntParam):
                header.setSectionResizeMode(c, QHeaderView.ResizeMode.Fixed)
                header.resizeSection(c, number_width)
            else:
                header.setSectionResizeMode(c, QHeaderView.ResizeMode.Stretch)
        # a choice's arrow would take a third of a narrow column: the text shows instead (a click opens
        # the list all the same)
        self.table.setStyleSheet("QComboBox { padding-left: 3px; padding-right: 0px; }"
                                 " QComboBox::drop-down { width: 0px; border: none; }")
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.setWordWrap(False)
        self._fit_height(MIN_ROWS_SHOWN)
        buttons = QHBoxLayout()
        # tool buttons: narrow enough that the row never widens the inspector
        self.add_button, self.remove_button = QToolButton(), QToolButton()
        self.up_button, self.down_button = QToolButton(), QToolButton()
        for button, text, tip, slot in (
                (self.add_button, "+ layer", "add a layer after the last (a copy of it)", self.add_row),
                (self.remove_button, "− layer", "remove the selected layer", self.remove_row),
                (self.up_button, "↑", "move the selected layer up", lambda: self.move_row(-1)),
                (self.down_button, "↓", "move the selected layer down", lambda: self.move_row(1))):
            button.setText(text)
            button.setToolTip(tip)
            button.clicked.connect(lambda _=False, s=slot: s())
            buttons.addWidget(button)
        buttons.addStretch(1)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.table)
        column.addLayout(buttons)
        self.rows: list[dict] = []
        self._loading = False

    # ---- the list <-> the table ----------------------------------------------------------------
    def set_value(self, value: Any) -> None:
        if not isinstance(value, list):
            return
        if value == self.rows and self.table.rowCount() == len(value):
            return
        self.rows = [dict(v) if isinstance(v, dict) else {} for v in value]
        self._loading = True
        try:
            self.table.setRowCount(len(self.rows))
            for r, row in enumerate(self.rows):
                for c, (f, index, _) in enumerate(self.columns):
                    self.table.setCellWidget(r, c, self._cell(f, index, row.get(f.name), r))
        finally:
            self._loading = False
        self.remove_button.setEnabled(len(self.rows) > self.param.min_items)
        self.add_button.setEnabled(self.param.max_items is None or len(self.rows) < self.param.max_items)
        self._fit_height(max(MIN_ROWS_SHOWN, min(len(self.rows), MAX_ROWS_SHOWN)))

    def _fit_height(self, rows: int) -> None:
        """Room for ``rows`` rows below the header, so that short stacks never scroll."""
        header = self.table.horizontalHeader().sizeHint().height()
        self.table.setFixedHeight(header + rows * ROW_HEIGHT + 2 * self.table.frameWidth() + 2)

    def _cell(self, f: Param, index: int | None, value: Any, row: int) -> QWidget:
        cell = self._make_cell(f, index, value, row)
        cell.setMinimumWidth(0)
        if isinstance(cell, QComboBox):
            cell.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            cell.setMinimumContentsLength(3)
            cell.setToolTip(f"{f.name}: {cell.currentText()}")
            cell.currentTextChanged.connect(lambda text, c=cell, name=f.name: c.setToolTip(f"{name}: {text}"))
        elif isinstance(cell, QSpinBox):
            cell.setButtonSymbols(QSpinBox.ButtonSymbols.NoButtons)  # arrows, wheel and typing still work
        return cell

    def _make_cell(self, f: Param, index: int | None, value: Any, row: int) -> QWidget:
        if index is not None:  # one entry of a short list of choices
            combo = ElidedComboBox()
            optional = index >= max(f.min_items, 1)
            combo.addItems(([NO_MODE] if optional else []) + list(f.item.choices))
            entries = value if isinstance(value, list) else []
            combo.setCurrentText(entries[index] if index < len(entries) else NO_MODE)
            combo.currentTextChanged.connect(
                lambda text, r=row, name=f.name, i=index: self._set_entry(r, name, i, text))
            return combo
        if isinstance(f, ChoiceParam):
            combo = ElidedComboBox()
            combo.addItems(list(f.choices))
            combo.setCurrentText(str(value))
            combo.currentTextChanged.connect(lambda text, r=row, name=f.name: self._set(r, name, text))
            return combo
        if isinstance(f, IntParam):
            spin = QSpinBox()
            spin.setRange(f.min if f.min is not None else -INT_LIMIT, f.max if f.max is not None else INT_LIMIT)
            spin.setValue(int(value) if isinstance(value, int) and not isinstance(value, bool) else spin.minimum())
            spin.valueChanged.connect(lambda v, r=row, name=f.name: self._set(r, name, int(v)))
            return spin
        line = QLineEdit(json.dumps(value))
        line.editingFinished.connect(lambda r=row, name=f.name, w=line: self._set_json(r, name, w.text()))
        return line

    def _set(self, row: int, name: str, value: Any) -> None:
        if self._loading or row >= len(self.rows):
            return
        self.rows[row][name] = value
        self._commit(f"{row}.{name}")

    def _set_entry(self, row: int, name: str, index: int, text: str) -> None:
        if self._loading or row >= len(self.rows):
            return
        entries = list(self.rows[row].get(name) or [])
        while len(entries) <= index:
            entries.append(NO_MODE)
        entries[index] = text
        self.rows[row][name] = [e for e in entries if e != NO_MODE]
        self._commit(f"{row}.{name}")

    def _set_json(self, row: int, name: str, text: str) -> None:
        try:
            self._set(row, name, json.loads(text))
        except json.JSONDecodeError as exc:
            self.show_error(f"layer {row + 1}, {name}: not JSON ({exc.msg})")

    def _commit(self, detail: str | None = None) -> None:
        """Commit the whole list; ``detail`` names the cell edited (edits of one cell in a row are one
        undo step), None a change of rows (a step of its own)."""
        value = [dict(r) for r in self.rows]
        reason = self.param.check(value)
        self.show_error(reason)
        if reason is None:
            self.commit(value, detail)

    # ---- rows ------------------------------------------------------------------------------------
    def _selected(self) -> int:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return rows[0] if rows else len(self.rows) - 1

    def add_row(self) -> None:
        template = dict(self.rows[-1]) if self.rows else dict(self.param.item.default or {}) or {
            f.name: f.default for f in self.fields}
        self.set_value([*self.rows, template])
        self._commit()

    def remove_row(self) -> None:
        if len(self.rows) <= self.param.min_items:
            return
        row = self._selected()
        self.set_value([r for i, r in enumerate(self.rows) if i != row])
        self._commit()

    def move_row(self, step: int) -> None:
        row = self._selected()
        other = row + step
        if not (0 <= row < len(self.rows) and 0 <= other < len(self.rows)):
            return
        rows = list(self.rows)
        rows[row], rows[other] = rows[other], rows[row]
        self.set_value(rows)
        self.table.selectRow(other)
        self._commit()


class ParamEditor(QWidget):
    """One parameter's editor. ``commit(value)`` is called with each new value; the controls come from
    the editor kind that EDITORS gives the parameter's class (``kind``)."""

    def __init__(self, param: Param, commit) -> None:
        super().__init__()
        self.param, self.commit = param, commit
        self.setToolTip(f"{param.name}: {param.doc}\naccepts {param.describe()}")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.kind = editor_kind(param)(self)
        self.widget = self.kind.make()
        layout.addWidget(self.widget)
        self.error = QLabel()
        self.error.setStyleSheet("color: #e05252")
        self.error.hide()

    def show_error(self, text: str | None) -> None:
        self.error.setText(text or "")
        self.error.setVisible(bool(text))

    def set_value(self, value: Any) -> None:
        """Show ``value`` without committing it back."""
        self.widget.blockSignals(True)
        try:
            self.kind.show(value)
        finally:
            self.widget.blockSignals(False)


class EditorKind(ABC):
    """How one class of parameter is edited: ``make`` builds the control, wired to the editor's commit;
    ``show`` puts a value in it (its signals blocked by ParamEditor.set_value)."""

    def __init__(self, editor: ParamEditor) -> None:
        self.editor = editor
        self.param = editor.param
        self.widget: Any = None

    @abstractmethod
    def make(self) -> QWidget:
        """The control, its signals wired to ``self.editor.commit``; kept as ``self.widget``."""

    @abstractmethod
    def show(self, value: Any) -> None:
        """Put ``value`` in the control without committing it."""


class OptionalBoolEditor(EditorKind):
    """Three states: true, false, null."""

    def make(self) -> QWidget:
        p = self.param
        self.widget = box = QCheckBox(p.none_means or "")
        box.setTristate(True)
        box.checkStateChanged.connect(lambda state: self.editor.commit(TRISTATE_VALUES[Qt.CheckState(state)]))
        box.setToolTip("half-checked: null" + (f" ({p.none_means})" if p.none_means else ""))
        return box

    def show(self, value: Any) -> None:
        self.widget.setCheckState(Qt.CheckState.PartiallyChecked if value is None
                                  else Qt.CheckState.Checked if value else Qt.CheckState.Unchecked)


class OptionalFloatEditor(EditorKind):
    """A number, or null when unticked."""

    def make(self) -> QWidget:
        p = self.param
        self.widget = wrapper = QWidget()
        row = QHBoxLayout(wrapper)
        row.setContentsMargins(0, 0, 0, 0)
        self.use = QCheckBox()
        self.use.setToolTip(f"unticked: null ({p.none_means or 'not set'})")
        self.number = float_spin(p)
        row.addWidget(self.use)
        row.addWidget(self.number)

        def changed(*_):
            self.number.setEnabled(self.use.isChecked())
            self.editor.commit(float(self.number.value()) if self.use.isChecked() else None)

        self.use.toggled.connect(changed)
        self.number.valueChanged.connect(changed)
        return wrapper

    def show(self, value: Any) -> None:
        for child in (self.use, self.number):
            child.blockSignals(True)
        self.use.setChecked(value is not None)
        self.number.setEnabled(value is not None)
        if isinstance(value, int | float):
            self.number.setValue(float(value))
        for child in (self.use, self.number):
            child.blockSignals(False)


class IntOrPairEditor(EditorKind):
    """Typed: 3, or "1, 5" for [h, w], or a word."""

    def make(self) -> QWidget:
        p = self.param
        self.widget = line = QLineEdit()
        line.setPlaceholderText("3, or 1, 5" + (" or " + " / ".join(p.choices) if p.choices else ""))

        def parse() -> None:
            text = line.text().strip().strip("[]")
            try:
                parts = [int(t) for t in text.replace(",", " ").split()]
                value = parts[0] if len(parts) == 1 else parts
            except ValueError:
                value = text.strip('"')
            reason = p.check(value)
            self.editor.show_error(reason)
            if reason is None:
                self.editor.commit(value)

        line.editingFinished.connect(parse)
        return line

    def show(self, value: Any) -> None:
        if not self.widget.hasFocus():
            self.widget.setText(", ".join(map(str, value)) if isinstance(value, list) else str(value))


class BoolEditor(EditorKind):
    def make(self) -> QWidget:
        self.widget = box = QCheckBox()
        box.toggled.connect(lambda on: self.editor.commit(bool(on)))
        return box

    def show(self, value: Any) -> None:
        self.widget.setChecked(bool(value))


class ChoiceEditor(EditorKind):
    def make(self) -> QWidget:
        self.widget = combo = QComboBox()
        combo.addItems(list(self.param.choices))
        combo.currentTextChanged.connect(lambda text: self.editor.commit(text))
        return combo

    def show(self, value: Any) -> None:
        self.widget.setCurrentText(str(value))


class IntOrChoiceEditor(EditorKind):
    """A number, or one of a few words picked in front of it."""

    def make(self) -> QWidget:
        p = self.param
        self.widget = wrapper = QWidget()
        row = QHBoxLayout(wrapper)
        row.setContentsMargins(0, 0, 0, 0)
        self.mode = QComboBox()
        self.mode.addItems(["number", *p.choices])
        self.number = QSpinBox()
        self.number.setRange(p.min if p.min is not None else -INT_LIMIT, p.max if p.max is not None else INT_LIMIT)
        row.addWidget(self.mode)
        row.addWidget(self.number)

        def changed(*_):
            word = self.mode.currentText()
            self.number.setEnabled(word == "number")
            self.editor.commit(self.number.value() if word == "number" else word)

        self.mode.currentTextChanged.connect(changed)
        self.number.valueChanged.connect(changed)
        return wrapper

    def show(self, value: Any) -> None:
        for child in (self.mode, self.number):
            child.blockSignals(True)
        if isinstance(value, str):
            self.mode.setCurrentText(value)
        else:
            self.mode.setCurrentText("number")
            self.number.setValue(int(value) if isinstance(value, int) else 0)
        self.number.setEnabled(not isinstance(value, str))
        for child in (self.mode, self.number):
            child.blockSignals(False)


class IntEditor(EditorKind):
    def make(self) -> QWidget:
        p = self.param
        self.widget = spin = QSpinBox()
        low = self.low = p.min if p.min is not None else -INT_LIMIT
        high = p.max if p.max is not None else INT_LIMIT
        if p.optional:  # one below the minimum stands for null ("from the input wire")
            spin.setRange(low - 1, high)
            spin.setSpecialValueText(f"auto ({p.none_means or 'null'})")
            spin.valueChanged.connect(lambda v: self.editor.commit(None if v == low - 1 else int(v)))
        else:
            spin.setRange(low, high)
            spin.valueChanged.connect(lambda v: self.editor.commit(int(v)))
        return spin

    def show(self, value: Any) -> None:
        self.widget.setValue(self.low - 1 if value is None else int(value) if isinstance(value, int) else self.low)


class FloatEditor(EditorKind):
    def make(self) -> QWidget:
        self.widget = spin = float_spin(self.param)
        spin.valueChanged.connect(lambda v: self.editor.commit(float(v)))
        return spin

    def show(self, value: Any) -> None:
        self.widget.setValue(float(value) if isinstance(value, int | float) else 0.0)


class StrEditor(EditorKind):
    def make(self) -> QWidget:
        self.widget = line = QLineEdit()
        line.editingFinished.connect(lambda: self.editor.commit(line.text()))
        return line

    def show(self, value: Any) -> None:
        self.widget.setText(str(value))


class RecordTableEditor(EditorKind):
    """A list of records (the cell stack's layers): a table, a row per record."""

    def make(self) -> QWidget:
        self.widget = RecordTable(self.param, self.editor.commit, self.editor.show_error)
        return self.widget

    def show(self, value: Any) -> None:
        self.widget.set_value(value)


class JsonEditor(EditorKind):
    """Other lists and records: JSON text, applied with the button."""

    def make(self) -> QWidget:
        self.widget = wrapper = QWidget()
        column = QVBoxLayout(wrapper)
        column.setContentsMargins(0, 0, 0, 0)
        self.text = QPlainTextEdit()
        self.text.setMinimumHeight(90)
        apply = QPushButton("Apply")
        column.addWidget(self.text)
        column.addWidget(apply)
        apply.clicked.connect(self.apply)
        return wrapper

    def apply(self) -> None:
        try:
            value = json.loads(self.text.toPlainText())
        except json.JSONDecodeError as exc:
            self.editor.show_error(f"not JSON: {exc.msg} (line {exc.lineno})")
            return
        reason = self.param.check(value)
        if reason:
            self.editor.show_error(reason)
            return
        self.editor.show_error(None)
        self.editor.commit(value)

    def show(self, value: Any) -> None:
        if not self.text.hasFocus():
            self.text.setPlainText(json.dumps(value, indent=1))


#: the editor kind of each parameter class, as (class, optional); an optional parameter without an entry
#: of its own takes the plain one (IntParam shows null as the value below its minimum)
EDITORS: dict[tuple[type[Param], bool], type[EditorKind]] = {
    (BoolParam, True): OptionalBoolEditor,
    (BoolParam, False): BoolEditor,
    (FloatParam, True): OptionalFloatEditor,
    (FloatParam, False): FloatEditor,
    (IntOrPairParam, False): IntOrPairEditor,
    (ChoiceParam, False): ChoiceEditor,
    (IntOrChoiceParam, False): IntOrChoiceEditor,
    (IntParam, False): IntEditor,
    (StrParam, False): StrEditor,
}


def editor_kind(param: Param) -> type[EditorKind]:
    """The editor kind for ``param``: its class's (or a base class's) in EDITORS, a table for a list of
    records, else JSON text."""
    if isinstance(param, ListParam) and isinstance(param.item, RecordParam):
        return RecordTableEditor
    for cls in type(param).__mro__:
        kind = EDITORS.get((cls, param.optional)) or EDITORS.get((cls, False))
        if kind is not None:
            return kind
    return JsonEditor


def float_spin(p: FloatParam) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setDecimals(6)
    spin.setRange(p.min if p.min is not None else -1e12, (p.below - 1e-6) if p.below is not None
                  else p.max if p.max is not None else 1e12)
    spin.setSingleStep(0.05)
    return spin


class InputWindowEditor(QGroupBox):
    """The model's bar window (the graph's input spec, not a node parameter): days, bars per day and
    features, each edit handed to ``commit(days=...)`` / ``bars_per_day=`` / ``features=``."""

    def __init__(self, commit) -> None:
        super().__init__("Bar window (the graph's input)")
        self.commit = commit
        form = QFormLayout(self)
        self.days, self.bars_per_day = QSpinBox(), QSpinBox()
        self.days.setRange(1, INPUT_LIMITS["days"])
        self.bars_per_day.setRange(1, INPUT_LIMITS["bars_per_day"])
        self.days.setToolTip("days of bars every sample sees, oldest first")
        self.bars_per_day.setToolTip("bars in one trading day: the data is resampled to it when it divides "
                                     "the data's bars per day")
        self.features = QLineEdit()
        self.features.setToolTip("feature names in channel order, separated by commas: open, high, low, "
                                 "close, volume, turnover")
        self.days.valueChanged.connect(lambda v: self.commit(days=int(v)))
        self.bars_per_day.valueChanged.connect(lambda v: self.commit(bars_per_day=int(v)))
        self.features.editingFinished.connect(self._features_typed)
        form.addRow("days", self.days)
        form.addRow("bars per day", self.bars_per_day)
        form.addRow("features", self.features)
        self.length = QLabel()
        self.length.setStyleSheet("color: #9aa3ad")
        form.addRow(self.length)
        self.error = QLabel()
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #e05252")
        self.error.hide()
        form.addRow(self.error)

    def _features_typed(self) -> None:
        names = [t.strip() for t in self.features.text().replace(";", ",").split(",") if t.strip()]
        self.commit(features=names)

    def set_spec(self, spec) -> None:
        """Show ``spec`` without committing it back (a field being typed in keeps its text)."""
        for spin, value in ((self.days, spec.days), (self.bars_per_day, spec.bars_per_day)):
            if spin.value() != value:
                spin.blockSignals(True)
                spin.setValue(value)
                spin.blockSignals(False)
        if not self.features.hasFocus():
            self.features.setText(", ".join(spec.features))
        self.length.setText(f"{spec.days} x {spec.bars_per_day} = {spec.length:,} bars of "
                            f"{len(spec.features)} feature{'s' if len(spec.features) != 1 else ''}")

    def show_error(self, text: str | None) -> None:
        self.error.setText(text or "")
        self.error.setVisible(bool(text))


class Inspector(QScrollArea):
    """Shows the selected node of the current tab; edits go to the tab's document as undo steps."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.tab = None
        self.node_id: str | None = None
        self.editors: dict[str, ParamEditor] = {}
        self.window_editor: InputWindowEditor | None = None
        self._shown_key = None
        self._doc_open = False
        self._empty()

    def _empty(self, text: str = "Select a node to see its parameters.") -> None:
        self.editors = {}
        self.window_editor = None
        self._shown_key = None
        label = QLabel(text)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        label.setWordWrap(True)
        self.setWidget(label)

    def show_node(self, tab, node_id: str | None) -> None:
        self.tab, self.node_id = tab, node_id
        self.refresh()

    def refresh(self) -> None:
        tab, node_id = self.tab, self.node_id
        graph = tab.graph if tab is not None else None
        if graph is None or node_id is None or node_id not in graph.nodes:
            self._empty()
            return
        node = graph.nodes[node_id]
        node_type = tab.document.registry.get(node.type)
        key = (id(tab), node_id, node.type, tuple(sorted(node.params)))
        if key != self._shown_key:
            self._build(tab, node_id, node_type)
            self._shown_key = key
        for name, editor in self.editors.items():
            if name in node.params:
                editor.set_value(node.params[name])
        if self.window_editor is not None and graph.input is not None:
            self.window_editor.set_spec(graph.input)
        self._update_facts(tab, node_id)

    def _build(self, tab, node_id: str, node_type) -> None:
        root = QWidget()
        column = QVBoxLayout(root)
        node = tab.graph.nodes[node_id]
        title = QLabel(f"<b>{node_type.title if node_type else node.type}</b> "
                       f"<span style='color:#9aa3ad'>{node.type} v{node.version}</span>")
        column.addWidget(title)
        form = QFormLayout()
        # a narrow dock puts a label above its editor rather than scroll sideways
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapLongRows)
        self.id_edit = QLineEdit(node_id)
        self.id_edit.setToolTip("the node id: a Python identifier, also the name of its submodule")
        self.id_edit.editingFinished.connect(self._rename)
        form.addRow("id", self.id_edit)
        self.id_error = QLabel("")
        self.id_error.setWordWrap(True)
        self.id_error.setStyleSheet("color: #e05252")
        self.id_error.hide()
        form.addRow("", self.id_error)
        self.editors = {}
        if node_type is not None:
            for param in node_type.params:
                editor = ParamEditor(param, lambda value, detail="", name=param.name: self._commit(name, value, detail))
                label = QLabel(param.name)
                label.setToolTip(editor.toolTip())
                if hasattr(editor, "records"):  # a table takes the whole width, its name above it
                    form.addRow(label)
                    form.addRow(editor)
                else:
                    form.addRow(label, editor)
                form.addRow("", editor.error)
                self.editors[param.name] = editor
        column.addLayout(form)
        self.window_editor = None
        if node.type == INPUT_TYPE and tab.scope is None and tab.graph.kind == MODEL:
            self.window_editor = InputWindowEditor(self._set_window)
            column.addWidget(self.window_editor)
        self.facts = QLabel()
        self.facts.setWordWrap(True)
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        column.addWidget(self.facts)
        # parameters first; what the node does is one click away (and the title's tooltip)
        self.doc_toggle = self.doc = None
        if node_type is not None and node_type.doc:
            title.setToolTip(node_type.doc)
            self.doc_toggle = QToolButton()
            self.doc_toggle.setCheckable(True)
            self.doc_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            self.doc_toggle.setArrowType(Qt.ArrowType.RightArrow)
            self.doc_toggle.setText("What it does")
            self.doc_toggle.setAutoRaise(True)
            self.doc = QLabel(node_type.doc)
            self.doc.setWordWrap(True)
            self.doc.setStyleSheet("color: #9aa3ad")
            self.doc.setVisible(self._doc_open)
            self.doc_toggle.setChecked(self._doc_open)
            self.doc_toggle.setArrowType(Qt.ArrowType.DownArrow if self._doc_open else Qt.ArrowType.RightArrow)
            self.doc_toggle.toggled.connect(self._toggle_doc)
            column.addWidget(self.doc_toggle)
            column.addWidget(self.doc)
        column.addStretch(1)
        self.setWidget(root)

    def _toggle_doc(self, shown: bool) -> None:
        self._doc_open = shown  # stays open for the next node, as the user left it
        self.doc.setVisible(shown)
        self.doc_toggle.setArrowType(Qt.ArrowType.DownArrow if shown else Qt.ArrowType.RightArrow)

    def _set_window(self, **fields) -> None:
        """Change the graph's bar window as one undo step (typing digits into one field merges);
        validation re-infers every shape from it."""
        tab = self.tab
        if tab is None:
            return
        name = next(iter(fields))
        try:
            tab.document.edit(f"Set input {name}", lambda g: set_input_window(g, **fields), None,
                              merge_key=f"input:{name}")
        except EditError as exc:
            self.window_editor.show_error(str(exc))
            return
        self.window_editor.show_error(None)

    def _update_facts(self, tab, node_id: str) -> None:
        v = tab.document.validation_of(tab.scope)
        lines = []
        for port, shape in v.in_shapes.get(node_id, {}).items():
            lines.append(f"in <b>{port}</b>: {shape.describe()}")
        for port, shape in v.out_shapes.get(node_id, {}).items():
            lines.append(f"out <b>{port}</b>: {shape.describe()}")
        count = v.param_counts.get(node_id)
        if count is not None:
            lines.append(f"parameters: {count:,} ({format_count(count)})")
        for p in v.problems_of(node_id):
            colour = "#e05252" if p.severity == "error" else "#e0a030"
            lines.append(f"<span style='color:{colour}'>{'✖' if p.severity == 'error' else '⚠'} {p}</span>")
        self.facts.setText("<br>".join(lines) if lines else "<i>shapes unknown until the inputs are wired</i>")

    def _commit(self, name: str, value: Any, detail: str | None = "") -> None:
        """Set a parameter as one undo step; edits with the same ``detail`` in a row merge into one
        (typing digits), and ``detail`` None never merges (a row added to a table)."""
        tab, node_id = self.tab, self.node_id
        if tab is None or node_id is None:
            return
        editor = self.editors.get(name)
        reason = editor.param.check(value) if editor else None
        if editor is not None:
            editor.show_error(reason)

        def set_param(g) -> None:
            g.nodes[node_id].params[name] = value

        tab.document.edit(f"Set {node_id}.{name}", set_param, tab.scope,
                          merge_key=None if detail is None else f"param:{tab.scope}:{node_id}:{name}:{detail}")

    def _rename(self) -> None:
        tab, old = self.tab, self.node_id
        new = self.id_edit.text().strip()
        if tab is None or old is None or new == old:
            return
        graph = tab.graph
        reason = id_problem(new) or (f"{new!r} is taken by another node" if new in graph.nodes else None)
        if reason:
            self.id_edit.setText(old)
            self.id_error.setText(f"Cannot rename {old} to {new!r}: {reason}.")  # said where the user looks
            self.id_error.show()
            return
        self.id_error.hide()
        tab.document.edit(f"Rename {old} to {new}", lambda g: g.rename_node(old, new), tab.scope)
        self.node_id = new
        tab.scene.select_nodes([new])
