"""The output folder stays coherent: a document's files change together, the key's page
numbers come from the workbook they cite, nothing personal or planted changes a build."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import citations, copy_of, key_cites_result_pages

from workbook import build as build_mod
from workbook import cli, engine
from workbook import compile as tex
from workbook.config import Config
from workbook.render.base import exercise_numbers

pytestmark = pytest.mark.tex
FAST = ["-q", "--detail", "results"]
SMALL = ["--preset", "classroom"]  # for what any model shows: a quarter of the pages


def build(out: Path, *args: str) -> int:
    return cli.main(["build", "-o", str(out), *FAST, *args])


def test_key_cites_only_the_workbook_of_its_own_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], results_build: Path
) -> None:
    """The sequence that once made the key cite wrong pages: a workbook .tex replaced without
    compiling, then a key for those new settings. The key compiles beside a workbook .aux
    made from exactly that source, and so cites where the section really is; the folder
    never pairs the new .tex with the old PDF, and the key says its workbook is missing."""
    copy_of(results_build, tmp_path)  # what build(tmp_path) makes
    assert build(tmp_path, "--only", "workbook", "--tex-only", "--digits", "3") == 0
    assert "removed workbook.pdf, workbook.log, workbook.aux" in capsys.readouterr().err
    assert not (tmp_path / "workbook.pdf").exists() and (tmp_path / "exercises.pdf").exists()
    assert build(tmp_path, "--only", "answers", "--digits", "3") == 0
    err = capsys.readouterr().err  # said even under -q: the user must build that workbook
    assert f"{tmp_path / 'workbook.pdf'} is not there: build it with --only workbook" in err
    new_source = (tmp_path / "workbook.tex").read_text()
    fresh = tmp_path / "fresh"
    tex.compile_document(new_source, fresh, "workbook")
    pages = tex.label_pages(fresh / "workbook.aux")
    cited = citations(tmp_path / "answers.pdf")
    # the key cites the page where each result's table is printed (AdamW: the tensor's table)
    assert cited["2.1"][1] == pages["r:Q-0"]
    assert cited["13.16"][1] == pages["r:m-W-lm"]
    # and AdamW's worked section where it starts
    assert citations(tmp_path / "answers.pdf", section_pages=True)["13.16"][1] == pages["s:m-W-lm"]
    trace = engine.run(Config())
    numbers = exercise_numbers(trace, tuple(ch.number for ch in trace.chapters))
    assert len(set(numbers.values())) == 106  # 90 steps, and one AdamW exercise per tensor
    key_cites_result_pages(tmp_path, pages, numbers)
    # the stale .aux in the folder belongs to the 4-digit build and is refused as a source
    assert not tex.made_from(tmp_path / "workbook.aux", new_source)
    assert tex.made_from(fresh / "workbook.aux", new_source)


def test_tex_only_with_the_same_settings_keeps_the_pdf_it_matches(
    tmp_path: Path, results_build: Path
) -> None:
    copy_of(results_build, tmp_path)  # the workbook of build(tmp_path, "--only", "workbook")
    pdf = (tmp_path / "workbook.pdf").read_bytes()
    assert build(tmp_path, "--only", "workbook", "--tex-only") == 0
    assert (tmp_path / "workbook.pdf").read_bytes() == pdf


def test_a_failed_compile_changes_none_of_the_documents_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, results_build: Path
) -> None:
    copy_of(results_build, tmp_path)  # the workbook of build(tmp_path, "--only", "workbook")
    before = {p.name: p.read_bytes() for p in tmp_path.glob("workbook.*")}
    broken = "\\documentclass{article}\\begin{document}\\undefinedcommand\\end{document}\n"
    monkeypatch.setattr(build_mod.Builder, "source", lambda self, name, trace: broken)
    # the same settings: only --force compiles the (patched) source
    assert build(tmp_path, "--only", "workbook", "--force") == 4
    assert {name: (tmp_path / name).read_bytes() for name in before} == before
    assert sorted(p.name for p in tmp_path.glob("workbook.*")) == sorted(
        [*before, "workbook.failed.log"]
    )
    assert "Undefined control sequence" in (tmp_path / "workbook.failed.log").read_text()


def test_log_write_does_not_follow_a_planted_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "B"
    out.mkdir()
    (out / "workbook.log").symlink_to(victim)
    assert build(out, "--only", "workbook", *SMALL) == 0
    assert victim.read_text() == "keep me"
    assert not (out / "workbook.log").is_symlink()
    assert "Output written on" in (out / "workbook.log").read_text()


def test_personal_latexmk_configuration_is_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".latexmkrc").write_text("$out_dir = 'out';\n$pdf_mode = 0;\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TEXMFHOME", str(home / "texmf"))
    assert build(tmp_path / "B", "--only", "workbook", *SMALL) == 0
    assert (tmp_path / "B" / "workbook.pdf").stat().st_size > 10_000


def test_a_second_run_into_a_busy_folder_is_refused_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two builds into one folder once made one of them remove the other's private folder
    as stale and fail with a confusing line."""
    live = tmp_path / ".build-live"
    live.mkdir()
    with tex.folder_lock(tmp_path):  # another run holds the folder
        assert build(tmp_path, "--only", "workbook") == 2
        err = capsys.readouterr().err
        assert (
            err
            == f"workbook: another workbook run is writing into {tmp_path}; wait for it to end\n"
        )
        assert live.exists()  # the other run's private folder is untouched
    assert not (tmp_path / tex.LOCK_NAME).exists()


def test_private_folders_of_a_killed_build_are_removed_and_no_user_folder(tmp_path: Path) -> None:
    """A private folder carries the tool's marker; a folder of the user's named like one
    (issue 21: `mkdir o/.workbook-notes` was deleted) has none and stays."""
    from workbook.landing import MARK

    stale = [tmp_path / ".workbook-killed", tmp_path / ".build-killed"]
    for folder in stale:
        folder.mkdir()
        (folder / MARK).write_text("")
        (folder / "doc.aux").write_text("left behind")
    users = [tmp_path / ".workbook-notes", tmp_path / ".build-old", tmp_path / ".handouts-2025"]
    for folder in users:
        folder.mkdir()
        (folder / "mine.txt").write_text("keep me")
    assert build(tmp_path, "--only", "workbook", *SMALL) == 0
    assert not any(folder.exists() for folder in stale)
    assert all((folder / "mine.txt").read_text() == "keep me" for folder in users)
    hidden = {p.name for p in tmp_path.iterdir() if p.name.startswith(".")}
    assert hidden == {f.name for f in users}


def tex_running_in(folder: Path) -> list[int]:
    """Process ids of TeX programs whose working folder is inside `folder`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cwd = (proc / "cwd").readlink()
            name = (proc / "comm").read_text().strip()
        except OSError:
            continue  # not a process, or gone
        if name in ("pdflatex", "latexmk", "perl") and cwd.is_relative_to(folder):
            found.append(int(proc.name))
    return found


@pytest.mark.parametrize(
    "signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=["TERM", "INT", "HUP"]
)
def test_an_interrupted_build_leaves_the_previous_one_and_no_private_folders(
    tmp_path: Path, signum: int, results_build: Path
) -> None:
    """The signal goes to the process alone, not its group: it stops TeX itself (TeX once
    ran on to the end of its pass, and a SIGKILL after that left a private folder)."""
    copy_of(results_build, tmp_path)  # what build(tmp_path) makes
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    run = subprocess.Popen(
        [sys.executable, "-m", "workbook", "build", "-o", str(tmp_path), "-q", "--digits", "3"],
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".build-*/.*-*")) and time.monotonic() < deadline:
        time.sleep(0.05)  # until LaTeX is at work in the staging folder
    run.send_signal(signum)
    _, err = run.communicate(timeout=120)
    assert tex_running_in(tmp_path) == []  # stopped, not left running
    assert run.returncode == 130 and err.strip() == "workbook: interrupted"
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_very_large_build_is_refused_before_tex_unless_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    big = ["build", "-o", str(tmp_path), "-q", "--d-model", "64", "--d-ff", "256"]
    assert cli.main(big) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "add --yes" in err and "pages" in err
    assert not list(tmp_path.iterdir())  # nothing written
    estimate = int(re.search(r"about ([\d,]+) pages", err).group(1).replace(",", ""))
    assert 6000 < estimate < 10000  # measured: the workbook alone is over 5,000 pages
