"""Every command's --help prints its help: help texts come from declarations (options tables, data
sources), and one with a stray '%' would make argparse fail on --help."""

from __future__ import annotations

import argparse

import pytest

from studio.cli import build_parser, main


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += _commands(sub, (*path, name))
    return found


COMMANDS = _commands(build_parser())


def test_the_commands_include_the_nested_ones():
    assert ("train",) in COMMANDS and ("data", "inspect") in COMMANDS and ("predict",) in COMMANDS


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "studio")
def test_every_command_prints_its_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: studio")
    assert " ".join(("studio", *command)) in out
