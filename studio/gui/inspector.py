"""The inspector: every parameter of the selected node with an editor that fits its declaration, its
doc as tooltip, and what the validator derived (shapes, lengths, parameter count, problems)."""

from __future__ import annotations

import json
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from studio.core.document import id_problem
from studio.core.params import (
    BoolParam,
    ChoiceParam,
    FloatParam,
    IntOrChoiceParam,
    IntOrPairParam,
    IntParam,
    Param,
    StrParam,
)
from studio.core.validation import format_count

INT_LIMIT = 2_000_000_000


class ParamEditor(QWidget):
    """One parameter's editor. ``commit(value)`` is called with each new value."""

    def __init__(self, param: Param, commit) -> None:
        super().__init__()
        self.param, self.commit = param, commit
        self.setToolTip(f"{param.name}: {param.doc}\naccepts {param.describe()}")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.widget = self._make()
        layout.addWidget(self.widget)
        self.error = QLabel()
        self.error.setStyleSheet("color: #e05252")
        self.error.hide()

    def _make(self) -> QWidget:
        p = self.param
        if isinstance(p, BoolParam) and p.optional:  # three states: true, false, null
            box = QCheckBox(p.none_means or "")
            box.setTristate(True)
            states = {Qt.CheckState.Checked: True, Qt.CheckState.Unchecked: False,
                      Qt.CheckState.PartiallyChecked: None}
            box.checkStateChanged.connect(lambda state: self.commit(states[Qt.CheckState(state)]))
            box.setToolTip("half-checked: null" + (f" ({p.none_means})" if p.none_means else ""))
            return box
        if isinstance(p, FloatParam) and p.optional:  # a number, or null when unticked
            wrapper = QWidget()
            row = QHBoxLayout(wrapper)
            row.setContentsMargins(0, 0, 0, 0)
            self.use = QCheckBox()
            self.use.setToolTip(f"unticked: null ({p.none_means or 'not set'})")
            self.number = self._float_spin(p)
            row.addWidget(self.use)
            row.addWidget(self.number)

            def changed(*_):
                self.number.setEnabled(self.use.isChecked())
                self.commit(float(self.number.value()) if self.use.isChecked() else None)

            self.use.toggled.connect(changed)
            self.number.valueChanged.connect(changed)
            return wrapper
        if isinstance(p, IntOrPairParam):  # typed: 3, or "1, 5" for [h, w], or a word
            line = QLineEdit()
            line.setPlaceholderText("3, or 1, 5" + (" or " + " / ".join(p.choices) if p.choices else ""))

            def parse() -> None:
                text = line.text().strip().strip("[]")
                try:
                    parts = [int(t) for t in text.replace(",", " ").split()]
                    value = parts[0] if len(parts) == 1 else parts
                except ValueError:
                    value = text.strip('"')
                reason = p.check(value)
                self.show_error(reason)
                if reason is None:
                    self.commit(value)

            line.editingFinished.connect(parse)
            return line
        if isinstance(p, BoolParam):
            box = QCheckBox()
            box.toggled.connect(lambda on: self.commit(bool(on)))
            return box
        if isinstance(p, ChoiceParam):
            combo = QComboBox()
            combo.addItems(list(p.choices))
            combo.currentTextChanged.connect(lambda text: self.commit(text))
            return combo
        if isinstance(p, IntOrChoiceParam):
            wrapper = QWidget()
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
                self.commit(self.number.value() if word == "number" else word)

            self.mode.currentTextChanged.connect(changed)
            self.number.valueChanged.connect(changed)
            return wrapper
        if isinstance(p, IntParam):
            spin = QSpinBox()
            low = p.min if p.min is not None else -INT_LIMIT
            high = p.max if p.max is not None else INT_LIMIT
            if p.optional:  # one below the minimum stands for null ("from the input wire")
                spin.setRange(low - 1, high)
                spin.setSpecialValueText(f"auto ({p.none_means or 'null'})")
                spin.valueChanged.connect(lambda v: self.commit(None if v == low - 1 else int(v)))
            else:
                spin.setRange(low, high)
                spin.valueChanged.connect(lambda v: self.commit(int(v)))
            return spin
        if isinstance(p, FloatParam):
            spin = self._float_spin(p)
            spin.valueChanged.connect(lambda v: self.commit(float(v)))
            return spin
        if isinstance(p, StrParam):
            line = QLineEdit()
            line.editingFinished.connect(lambda: self.commit(line.text()))
            return line
        # lists and records: JSON text, applied with the button or Ctrl+Enter
        wrapper = QWidget()
        column = QVBoxLayout(wrapper)
        column.setContentsMargins(0, 0, 0, 0)
        self.text = QPlainTextEdit()
        self.text.setMinimumHeight(90)
        apply = QPushButton("Apply")
        column.addWidget(self.text)
        column.addWidget(apply)

        def apply_json() -> None:
            try:
                value = json.loads(self.text.toPlainText())
            except json.JSONDecodeError as exc:
                self.show_error(f"not JSON: {exc.msg} (line {exc.lineno})")
                return
            reason = self.param.check(value)
            if reason:
                self.show_error(reason)
                return
            self.show_error(None)
            self.commit(value)

        apply.clicked.connect(apply_json)
        return wrapper

    @staticmethod
    def _float_spin(p: FloatParam) -> QDoubleSpinBox:
        spin = QDoubleSpinBox()
        spin.setDecimals(6)
        spin.setRange(p.min if p.min is not None else -1e12, (p.below - 1e-6) if p.below is not None
                      else p.max if p.max is not None else 1e12)
        spin.setSingleStep(0.05)
        return spin

    def show_error(self, text: str | None) -> None:
        self.error.setText(text or "")
        self.error.setVisible(bool(text))

    def set_value(self, value: Any) -> None:
        """Show ``value`` without committing it back."""
        w = self.widget
        w.blockSignals(True)
        try:
            p = self.param
            if isinstance(p, BoolParam) and p.optional:
                w.setCheckState(Qt.CheckState.PartiallyChecked if value is None
                                else Qt.CheckState.Checked if value else Qt.CheckState.Unchecked)
            elif isinstance(p, FloatParam) and p.optional:
                for child in (self.use, self.number):
                    child.blockSignals(True)
                self.use.setChecked(value is not None)
                self.number.setEnabled(value is not None)
                if isinstance(value, int | float):
                    self.number.setValue(float(value))
                for child in (self.use, self.number):
                    child.blockSignals(False)
            elif isinstance(p, IntOrPairParam):
                if not w.hasFocus():
                    w.setText(", ".join(map(str, value)) if isinstance(value, list) else str(value))
            elif isinstance(p, BoolParam):
                w.setChecked(bool(value))
            elif isinstance(p, ChoiceParam):
                w.setCurrentText(str(value))
            elif isinstance(p, IntOrChoiceParam):
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
            elif isinstance(p, IntParam):
                low = p.min if p.min is not None else -INT_LIMIT
                w.setValue(low - 1 if value is None else int(value) if isinstance(value, int) else low)
            elif isinstance(p, FloatParam):
                w.setValue(float(value) if isinstance(value, int | float) else 0.0)
            elif isinstance(p, StrParam):
                w.setText(str(value))
            elif not self.text.hasFocus():
                self.text.setPlainText(json.dumps(value, indent=1))
        finally:
            w.blockSignals(False)


class Inspector(QScrollArea):
    """Shows the selected node of the current tab; edits go to the tab's document as undo steps."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.tab = None
        self.node_id: str | None = None
        self.editors: dict[str, ParamEditor] = {}
        self._shown_key = None
        self._empty()

    def _empty(self, text: str = "Select a node to see its parameters.") -> None:
        self.editors = {}
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
        self._update_facts(tab, node_id)

    def _build(self, tab, node_id: str, node_type) -> None:
        root = QWidget()
        column = QVBoxLayout(root)
        node = tab.graph.nodes[node_id]
        title = QLabel(f"<b>{node_type.title if node_type else node.type}</b> "
                       f"<span style='color:#9aa3ad'>{node.type} v{node.version}</span>")
        column.addWidget(title)
        if node_type is not None and node_type.doc:
            doc = QLabel(node_type.doc)
            doc.setWordWrap(True)
            doc.setStyleSheet("color: #9aa3ad")
            column.addWidget(doc)
        form = QFormLayout()
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
                editor = ParamEditor(param, lambda value, name=param.name: self._commit(name, value))
                label = QLabel(param.name)
                label.setToolTip(editor.toolTip())
                form.addRow(label, editor)
                form.addRow("", editor.error)
                self.editors[param.name] = editor
        column.addLayout(form)
        self.facts = QLabel()
        self.facts.setWordWrap(True)
        self.facts.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        column.addWidget(self.facts)
        column.addStretch(1)
        self.setWidget(root)

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

    def _commit(self, name: str, value: Any) -> None:
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
                          merge_key=f"param:{tab.scope}:{node_id}:{name}")

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
