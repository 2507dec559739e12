"""Outputs land as a set (issue 21): every target checked before anything is replaced, the
old files put back when a move fails or is interrupted half-way, nothing written outside
the output folder."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import pytest

from workbook import cli, landing
from workbook.landing import MARK, OutputBlockedError, land, private_folder

FILES = [Path("a.pdf"), Path("a.tex"), Path("students/s1.pdf"), Path("students/s2.pdf")]


def hashes(folder: Path) -> dict[str, str]:
    """Every file under `folder` but the lock and private folders, by path: its SHA-256."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    }


def old_set(out: Path) -> dict[str, str]:
    for rel in [*FILES, Path("students/gone.pdf")]:
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(f"old {rel}")
    return hashes(out)


def new_stage(out: Path) -> Path:
    stage = Path(tempfile.mkdtemp(dir=out, prefix=".test-"))
    (stage / MARK).write_text("")
    for rel in FILES:
        (stage / rel).parent.mkdir(parents=True, exist_ok=True)
        (stage / rel).write_text(f"new {rel}")
    return stage


def test_a_set_lands_whole_and_takes_the_pdfs_it_did_not_make(tmp_path: Path) -> None:
    old_set(tmp_path)
    stage = new_stage(tmp_path)
    land(stage, tmp_path, FILES, "students")
    assert hashes(tmp_path) == {
        str(rel): hashlib.sha256(f"new {rel}".encode()).hexdigest() for rel in FILES
    }


@pytest.mark.parametrize("stop_at", range(1, 2 * len(FILES) + 2))
@pytest.mark.parametrize("how", [KeyboardInterrupt, OSError])
def test_a_landing_stopped_between_any_two_moves_leaves_the_old_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_at: int, how: type
) -> None:
    """Each move (a file aside, a new one in) can be the one that fails: whatever was moved
    is put back, byte for byte."""
    before = old_set(tmp_path)
    stage = new_stage(tmp_path)
    moves = {"n": 0}
    real_replace, real_rename = os.replace, os.rename

    def counted(real):
        def move(src, dst):
            moves["n"] += 1
            if moves["n"] == stop_at:
                raise how("stopped here")
            return real(src, dst)

        return move

    monkeypatch.setattr(landing.os, "replace", counted(real_replace))
    monkeypatch.setattr(landing.os, "rename", counted(real_rename))
    try:
        land(stage, tmp_path, FILES, "students")
    except (KeyboardInterrupt, OSError):
        monkeypatch.undo()
        assert hashes(tmp_path) == before
    else:  # fewer moves than stop_at: the whole new set
        assert stop_at > moves["n"]


def test_a_signal_during_the_moves_waits_for_the_set(tmp_path: Path) -> None:
    """A SIGINT that comes while the files move is held until they are all in place."""
    from workbook import texrun

    old_set(tmp_path)
    stage = new_stage(tmp_path)
    real = os.replace

    def interrupted(src, dst):
        texrun.interrupt()  # what the signal handler does: held inside signals_held
        return real(src, dst)

    landing.os.replace = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            land(stage, tmp_path, FILES, "students")
    finally:
        landing.os.replace = real
    assert set(hashes(tmp_path)) == {str(rel) for rel in FILES}  # the new set, whole


@pytest.mark.parametrize(
    ("make", "said"),
    [
        (lambda out: (out / "students").write_text("a file"), "the run puts a folder there"),
        (lambda out: (out / "a.pdf").mkdir(), "is a folder where the run puts a file"),
    ],
)
def test_targets_that_cannot_be_written_are_refused_before_anything_moves(
    tmp_path: Path, make, said: str
) -> None:
    (tmp_path / "a.tex").write_text("old a.tex")
    make(tmp_path)
    before = hashes(tmp_path)
    stage = new_stage(tmp_path)
    with pytest.raises(OutputBlockedError, match=said):
        land(stage, tmp_path, FILES, "students")
    assert hashes(tmp_path) == before


def test_a_build_onto_a_folder_where_its_file_goes_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "exercises.tex").mkdir()
    (tmp_path / "workbook.tex").write_text("old")
    code = cli.main(["build", "--tex-only", "-q", "-o", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "exercises.tex is a folder where the run puts a file" in err
    assert (tmp_path / "workbook.tex").read_text() == "old"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") and p.is_dir()]


def test_a_private_folder_is_marked_and_removed_at_its_end(tmp_path: Path) -> None:
    with private_folder(tmp_path, "build") as stage:
        assert (stage / MARK).is_file() and stage.name.startswith(".build-")
    assert not stage.exists()


@pytest.mark.tex
def test_a_key_without_its_workbook_writes_nothing_outside_the_output_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key compiles a workbook privately for its page numbers: inside the output
    folder's private folder, never in the system's temporary folder (a sentinel here)."""
    sentinel = tmp_path / "tmp"
    sentinel.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(sentinel))
    monkeypatch.setenv("TMPDIR", str(sentinel))
    out = tmp_path / "out"
    argv = ["build", "--only", "answers", "--preset", "classroom", "-q", "-o", str(out)]
    assert cli.main(argv) == 0
    assert list(sentinel.iterdir()) == []
    assert sorted(p.name for p in out.iterdir()) == sorted(
        f"answers{s}" for s in (".aux", ".log", ".pdf", ".tex")
    )


@pytest.mark.tex
def test_handouts_onto_a_file_named_students_are_refused_before_tex(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roster = tmp_path / "r.csv"
    roster.write_text("id,name\na1,Ann\n")
    out = tmp_path / "lesson"
    out.mkdir()
    (out / "students").write_text("a file of the user's")
    argv = ["handouts", "--preset", "classroom", "--roster", str(roster), "--sections", "2.1"]
    assert cli.main([*argv, "-q", "-o", str(out)]) == 2
    assert "the run puts a folder there" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["students"]
