"""The README and docs/ say what the tool does now (issue 24): every command they show
parses (and the cheap ones run), the command-line reference is the parser's own help, and
the README's pictures are pages the current build makes."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import shared_build

from workbook import cli

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = re.compile(r"```sh\n(.*?)```", re.S)
RUN = {"summary", "exercises", "export"}  # cheap enough to run; the others are parsed


def commands() -> list[tuple[str, str]]:
    """(file, command line) for every line of every fenced sh block."""
    found = []
    for doc in DOCS:
        for block in SHELL.findall(doc.read_text(encoding="utf-8")):
            for line in block.splitlines():
                line = line.split("  #")[0].strip()
                if line:
                    found.append((doc.name, line))
    return found


def test_the_readme_is_short_and_links_only_files_that_exist() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    for target in re.findall(r"\]\(([^)#]+)\)", text):
        assert (ROOT / target).exists(), target


def test_the_quick_start_is_two_make_targets_that_exist() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first = SHELL.findall(readme)[0]
    lines = [line.split("#")[0].strip() for line in first.splitlines() if line.strip()]
    assert lines == ["make workbook", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    for target in ("workbook", "test", "test-fast", "bench", "images", "lint"):
        assert re.search(rf"^{target}:", makefile, re.M), target


@pytest.mark.parametrize(("doc", "line"), [c for c in commands() if c[1].startswith("workbook")])
def test_every_command_shown_parses_and_the_cheap_ones_run(
    doc: str, line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = shlex.split(line)[1:]
    try:
        args = cli.build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{doc}: {line!r} does not parse")
    if args.command in RUN:
        monkeypatch.chdir(tmp_path)  # an --output it names goes here
        assert cli.main(argv) == 0, (doc, line)


def test_every_other_shell_line_is_a_make_target() -> None:
    others = [line for _, line in commands() if not line.startswith("workbook")]
    makefile = (ROOT / "Makefile").read_text()
    for line in others:
        target = line.split()[1]
        assert line.startswith("make ") and re.search(rf"^{target}:", makefile, re.M), line


def test_the_command_line_reference_is_the_parsers_help() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cli_doc.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr


@pytest.mark.tex
def test_the_readmes_pictures_are_pages_the_current_build_makes(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """docs/img/pages.json names each picture's document and page and the hash of its text;
    the same commands today give the same page (make images remakes them)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import make_images

    folder = tmp_path_factory.mktemp("images")
    (folder / "classroom").symlink_to(shared_build(tmp_path_factory, *make_images.CLASSROOM))
    make_images.make_lesson(folder)
    recorded = json.loads((ROOT / "docs" / "img" / "pages.json").read_text())
    assert make_images.pages(folder) == recorded, "the pictures are stale: run make images"
    for name in recorded:
        assert (ROOT / "docs" / "img" / f"{name}.png").stat().st_size > 10_000, name
