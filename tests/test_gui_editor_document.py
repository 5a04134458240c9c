"""The editor document without a window (a QApplication for its idle timer, no widget): undo by
serialized text, what each change names, the undo limit, merges, and moves that keep the validation."""

from __future__ import annotations

import json

import pytest

from studio.core.edits import EditError, group_in
from studio.core.graph_file import graph_to_json, load_graph
from studio.gui.editor_document import UNDO_LIMIT, Change, EditorDocument
from tests.conftest import GRAPHS


@pytest.fixture
def doc(registry, qapp):
    return EditorDocument(load_graph(GRAPHS / "two_branch.json"), registry)


def changes_of(doc) -> list[Change]:
    seen: list[Change] = []
    doc.changed.connect(seen.append)
    return seen


def test_edits_undo_and_redo_by_text(doc):
    seen = changes_of(doc)
    start = graph_to_json(doc.graph)
    doc.edit("Set kernel", lambda g: g.nodes["conv_short"].params.__setitem__("kernel_size", 7))
    after_one = graph_to_json(doc.graph)
    doc.edit("Remove relu", lambda g: g.remove_node("relu_1"))
    after_two = graph_to_json(doc.graph)
    assert doc.undo_stack.count() == 2
    assert seen[0].nodes == {None: {"conv_short"}} and not seen[0].wires and seen[0].validated
    assert seen[1].nodes == {None: {"relu_1"}} and seen[1].wires == {None}
    doc.undo_stack.undo()
    assert graph_to_json(doc.graph) == after_one
    assert seen[-1].nodes == {None: {"relu_1"}} and seen[-1].wires == {None}
    doc.undo_stack.undo()
    assert graph_to_json(doc.graph) == start and not doc.modified
    doc.undo_stack.redo()
    doc.undo_stack.redo()
    assert graph_to_json(doc.graph) == after_two
    # the steps hold texts, not graphs, and neighbours share theirs
    first, second = doc.undo_stack.command(0), doc.undo_stack.command(1)
    assert isinstance(first.before, str) and first.after is second.before
    assert json.loads(first.before) == start


def test_a_failed_or_empty_edit_leaves_no_step(doc):
    before = graph_to_json(doc.graph)

    def fail(g):
        g.remove_node("relu_1")
        raise EditError("no")

    with pytest.raises(EditError):
        doc.edit("Fail", fail)
    assert graph_to_json(doc.graph) == before and doc.undo_stack.count() == 0
    doc.edit("Nothing", lambda g: None)
    assert doc.undo_stack.count() == 0


def test_moves_keep_the_validation_and_name_only_the_moved_nodes(doc):
    seen = changes_of(doc)
    validation = doc.validation
    doc.edit("Move", lambda g: setattr(g.nodes["add_1"], "pos", (999.0, 40.0)))
    assert doc.validation is validation and seen[-1].validated is False
    assert seen[-1].nodes == {None: {"add_1"}}
    doc.edit("Set", lambda g: g.nodes["conv_long"].params.__setitem__("kernel_size", 3))
    assert doc.validation is not validation and seen[-1].validated is True


def test_typing_into_one_field_is_one_step(doc):
    original = doc.graph.nodes["conv_long"].params["kernel_size"]
    for k in (1, 11, 9):
        doc.edit("Set", lambda g, k=k: g.nodes["conv_long"].params.__setitem__("kernel_size", k),
                 merge_key="param:None:conv_long:kernel_size")
    assert doc.undo_stack.count() == 1
    doc.undo_stack.undo()
    assert doc.graph.nodes["conv_long"].params["kernel_size"] == original
    doc.undo_stack.redo()
    assert doc.graph.nodes["conv_long"].params["kernel_size"] == 9


def test_the_undo_stack_is_bounded(doc):
    assert doc.undo_stack.undoLimit() == UNDO_LIMIT
    for i in range(UNDO_LIMIT + 20):
        doc.edit("Move", lambda g, i=i: setattr(g.nodes["add_1"], "pos", (float(i * 20), 0.0)))
    assert doc.undo_stack.count() == UNDO_LIMIT


def test_edits_in_a_block_scope_and_block_files_not_read_again(registry, qapp, monkeypatch):
    doc = EditorDocument(load_graph(GRAPHS / "residual_blocks.json"), registry)
    seen = changes_of(doc)
    doc.edit("Set", lambda g: g.nodes["conv"].params.__setitem__("kernel_size", 8), scope="downsample")
    assert seen[-1].nodes == {"downsample": {"conv"}}
    assert doc.graph.blocks["downsample"].graph.nodes["conv"].params["kernel_size"] == 8
    # undo restores from text, and the block *file* conv_relu.json is reused, not read from disk
    file_block = doc.graph.blocks["conv_relu"].graph
    monkeypatch.setattr("studio.core.graph_file.load_graph",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("a block file was read")))
    doc.undo_stack.undo()
    assert doc.graph.blocks["downsample"].graph.nodes["conv"].params["kernel_size"] == 4
    assert doc.graph.blocks["conv_relu"].graph is file_block
    with pytest.raises(EditError, match="no block 'nope'"):
        doc.edit("Set", lambda g: None, scope="nope")


def test_grouping_inside_a_block_picks_a_name_free_in_the_file(registry, qapp):
    doc = EditorDocument(load_graph(GRAPHS / "residual_blocks.json"), registry)
    doc.edit("make block_1", lambda g: g.blocks.__setitem__("block_1", g.blocks["downsample"]))
    block_id = doc.edit("Group", lambda g: group_in(g, "downsample", ["relu"]))
    name = doc.graph.blocks["downsample"].graph.nodes[block_id].params["block"]
    assert name != "block_1" and name in doc.graph.blocks
    assert doc.graph.blocks["block_1"].graph is not None  # the file's own block_1 is untouched


def test_the_text_after_an_edit_is_made_when_idle(doc, monkeypatch):
    made = []
    real = doc._serialize
    monkeypatch.setattr(doc, "_serialize", lambda: made.append(1) or real())
    doc.edit("Set", lambda g: g.nodes["conv_long"].params.__setitem__("kernel_size", 3))
    command = doc.undo_stack.command(0)
    assert command.after is None, "serialized inside the edit"
    assert len(made) == 1  # the text before (kept from the load), not the one after
    doc._idle.timeout.emit()  # what the event loop does once the redraw is done
    assert command.after is not None and json.loads(command.after) == graph_to_json(doc.graph)


def test_typing_after_a_save_undoes_to_the_saved_state(doc, tmp_path):
    doc.edit("Set", lambda g: g.nodes["conv_long"].params.__setitem__("kernel_size", 9),
             merge_key="param:None:conv_long:kernel_size")
    doc.save(tmp_path / "saved.json")
    for k in (3, 7):
        doc.edit("Set", lambda g, k=k: g.nodes["conv_long"].params.__setitem__("kernel_size", k),
                 merge_key="param:None:conv_long:kernel_size")
    assert doc.undo_stack.count() == 2  # Qt does not merge into the saved step
    doc.undo_stack.undo()
    assert doc.graph.nodes["conv_long"].params["kernel_size"] == 9 and not doc.modified
