"""docs/cli.md from the command line's own --help: `python scripts/cli_doc.py` writes it,
`--check` exits 1 when the file is not what the parser says (tests/test_docs.py runs it)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from workbook.cli import build_parser

WIDTH = "96"  # columns argparse wraps the help at, whatever the terminal
DOC = Path(__file__).resolve().parent.parent / "docs" / "cli.md"
INTRO = """# The command line

Every command and option, as `workbook COMMAND --help` prints it (this file is made from the
parser by `python scripts/cli_doc.py`; a test fails when it is out of date). Model options
are the same for every command that takes them, and each is also a key of a TOML file given
with `--config FILE`: flags win over the file, the file over the defaults, and the defaults
are a preset's when `--preset` names one.
"""


def subcommands(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in p._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def text() -> str:
    os.environ["COLUMNS"] = WIDTH
    p = build_parser()
    parts = [INTRO, "```text", p.format_help().rstrip(), "```", ""]
    for name, sub in subcommands(p).items():
        parts += [f"## workbook {name}", "", "```text", sub.format_help().rstrip(), "```", ""]
    return "\n".join(parts)


def main() -> int:
    made = text()
    if "--check" in sys.argv[1:]:
        if not DOC.is_file() or DOC.read_text(encoding="utf-8") != made:
            print(f"{DOC} is out of date: run python scripts/cli_doc.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(made, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
