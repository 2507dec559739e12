"""--help: every option of every command says what it does; every example parses."""

import argparse
import shlex

import pytest

from workbook.cli import EXAMPLES, build_parser


def _commands() -> dict[str, argparse.ArgumentParser]:
    p = build_parser()
    sub = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


COMMANDS = _commands()


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_has_help(name: str) -> None:
    for action in COMMANDS[name]._actions:
        words = (action.help or "").split("(default")[0].split()
        assert len(words) >= 3, f"{name} {action.option_strings}: {action.help!r}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_defaults_and_choices_are_said(name: str) -> None:
    for action in COMMANDS[name]._actions:
        takes_value = action.nargs != 0 and action.option_strings
        has_default = action.default not in (None, argparse.SUPPRESS, False)
        if takes_value and has_default and not action.required:
            assert "default" in action.help, f"{name} {action.option_strings}: no default"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_examples_parse(name: str) -> None:
    assert 2 <= len(EXAMPLES[name]) <= 3
    for line in EXAMPLES[name]:
        words = shlex.split(line)
        assert words[:2] == ["workbook", name]
        build_parser().parse_args(words[1:])
    assert "examples:" in COMMANDS[name].format_help()
