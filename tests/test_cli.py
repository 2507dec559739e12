"""The command line: one-line errors with exit code 2, help and version, summary, layering."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workbook import __version__, cli, engine, params
from workbook.config import Config, ConfigError, load


def run_main(argv: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def run_process(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbook", *argv],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def assert_one_line_error(code: int, out: str, err: str, *needles: str) -> str:
    assert code == 2, (code, err)
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), repr(err)
    line = lines[0]
    assert line.startswith("workbook"), line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


# (flags, substrings the one error line must contain: the key and the value as shown)
BAD_FLAGS = [
    (["--d-model", "15"], ["d_model = 15", "heads = 2"]),
    (["--heads", "3"], ["d_model = 16", "heads = 3"]),
    (["--sentence", "I love transformers"], ["sentence = 'I love transformers'", "'love'"]),
    (
        ["--sentence", "I like like transformers"],
        ["sentence = 'I like like transformers'", "max_len = 5"],
    ),
    (["--max-len", "4"], ["sentence = 'I like transformers'", "max_len = 4"]),
    (["--d-model", "0"], ["d_model = 0"]),
    (["--d-model", "-16"], ["d_model = -16"]),
    (["--heads", "0"], ["heads = 0"]),
    (["--heads", "-2"], ["heads = -2"]),
    (["--d-ff", "0"], ["d_ff = 0"]),
    (["--d-ff", "-64"], ["d_ff = -64"]),
    (["--max-len", "0"], ["max_len = 0"]),
    (["--max-len=-5"], ["max_len = -5"]),
    (["--lr", "0"], ["lr = 0.0"]),
    (["--lr", "-0.001"], ["lr = -0.001"]),
    (["--beta1", "1.0"], ["beta1 = 1.0", "[0, 1)"]),
    (["--beta1", "-0.1"], ["beta1 = -0.1", "[0, 1)"]),
    (["--beta2", "1.0"], ["beta2 = 1.0", "[0, 1)"]),
    (["--beta2", "-0.1"], ["beta2 = -0.1", "[0, 1)"]),
    (["--adam-eps", "0"], ["adam_eps = 0.0"]),
    (["--adam-eps=-1e-8"], ["adam_eps = -1e-08"]),  # "-1e-8" alone reads as a flag
    (["--weight-decay", "-0.01"], ["weight_decay = -0.01"]),
    (["--heads", "two"], ["heads = 'two'"]),
    (["--lr", "fast"], ["lr = 'fast'"]),
    (["--lr", "nan"], ["lr = nan"]),
    (["--seed=-1"], ["seed = -1", "[0, 2**63)"]),  # Python's random would draw seed 1's weights
    ([f"--seed={2**63}"], [f"seed = {2**63}"]),
]


@pytest.mark.parametrize(("flags", "needles"), BAD_FLAGS, ids=lambda x: " ".join(x))
@pytest.mark.parametrize("command", ["summary", "export"])
def test_bad_flag_value(command, flags, needles, capsys) -> None:
    code, out, err = run_main([command, *flags], capsys)
    assert_one_line_error(code, out, err, *needles)


def test_negative_scientific_value_is_named(capsys) -> None:
    code, out, err = run_main(["summary", "--adam-eps", "-1e-8"], capsys)
    assert_one_line_error(code, out, err, "adam_eps = -1e-08")


# (TOML text, substrings of the error)
BAD_TOML = [
    ("d_modle = 32\n", ["unknown key 'd_modle' = 32", "did you mean 'd_model'?"]),
    ("learning_rate = 0.1\n", ["unknown key 'learning_rate' = 0.1"]),
    ('heads = "2"\n', ["heads = '2'"]),
    ('lr = "x"\n', ["lr = 'x'"]),
    ("vocab = 3\n", ["vocab = 3"]),
    ('vocab = ["<PAD>", "<BOS>", "I"]\n', ["vocab = ['<PAD>', '<BOS>', 'I']", "<EOS>"]),
    ("heads = 2.5\n", ["heads = 2.5"]),
    ("seed = true\n", ["seed = True"]),
    ("sentence = 5\n", ["sentence = 5"]),
    ("d_model = 12\nheads = 5\n", ["d_model = 12", "heads = 5"]),
    ("beta2 = 1.0\n", ["beta2 = 1.0"]),
    ("weight_decay = -1\n", ["weight_decay = -1.0"]),
    ("lr = inf\n", ["lr = inf"]),
]


@pytest.mark.parametrize(("text", "needles"), BAD_TOML, ids=[t for t, _ in BAD_TOML])
def test_bad_toml_value(text, needles, tmp_path, capsys) -> None:
    path = tmp_path / "model.toml"
    path.write_text(text)
    code, out, err = run_main(["summary", "--config", str(path)], capsys)
    assert_one_line_error(code, out, err, *needles)


def test_unreadable_toml_missing(tmp_path, capsys) -> None:
    path = tmp_path / "nowhere.toml"
    code, out, err = run_main(["summary", "--config", str(path)], capsys)
    assert_one_line_error(code, out, err, f"config file '{path}'", "No such file")


def test_unreadable_toml_directory(tmp_path, capsys) -> None:
    code, out, err = run_main(["summary", "--config", str(tmp_path)], capsys)
    assert_one_line_error(code, out, err, f"config file '{tmp_path}'", "Is a directory")


def test_a_config_that_is_no_regular_file_or_too_big_is_refused(tmp_path, capsys) -> None:
    """/dev/zero once read until the machine ran out of memory; a FIFO blocked forever."""
    import os

    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    big = tmp_path / "big.toml"
    big.write_text("#" * (2 << 20))
    for path, why in (("/dev/zero", "not a regular file"), (fifo, "not a regular file")):
        code, out, err = run_main(["summary", "--config", str(path)], capsys)
        assert_one_line_error(code, out, err, f"config file '{path}'", why)
    code, out, err = run_main(["summary", "--config", str(big)], capsys)
    assert_one_line_error(code, out, err, f"config file '{big}'", "larger than 1024 KiB")


def test_unreadable_toml_not_utf8(tmp_path, capsys) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'sentence = "caf\xe9"\n')
    code, out, err = run_main(["summary", "--config", str(path)], capsys)
    assert_one_line_error(code, out, err, f"config file '{path}'", "cannot read")


@pytest.mark.parametrize(
    "text", ["d_model = \n", "d_model = 16\nd_model = 32\n", "[[x\n", 'sentence = "open\n']
)
def test_malformed_toml(text, tmp_path, capsys) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(text)
    code, out, err = run_main(["summary", "--config", str(path)], capsys)
    assert_one_line_error(code, out, err, f"config file '{path}'", "not valid TOML")


def test_toml_tables_are_rejected(tmp_path, capsys) -> None:
    path = tmp_path / "tables.toml"
    path.write_text("[model]\nd_model = 16\n")
    code, out, err = run_main(["summary", "--config", str(path)], capsys)
    assert_one_line_error(code, out, err, f"config file '{path}'", "[model]")


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["summary", "--d-modle", "32"], ["--d-modle 32", "did you mean --d-model?"]),
        (["export", "--fromat", "json"], ["--fromat json", "did you mean --format?"]),
        (["summary", "--colour"], ["--colour"]),
        (["handouts", "--tex-only"], ["--tex-only is an option of build)"]),
        (["frobnicate"], ["'frobnicate'"]),
        ([], ["COMMAND"]),
        (["export", "--format", "xml"], ["--format", "'xml'"]),
        # an empty -o once wrote into the current folder; "-" made a folder named "-"
        (["build", "--chapters", "3-2", "--tex-only"], ["--chapters 3-2: 3-2 runs backwards"]),
        (["build", "-o", ""], ["--output", "is empty"]),
        (["build", "-o", "-"], ["'-' is not a folder"]),
        (["handouts", "-o", "a\x01b"], ["control character U+0001"]),
        (["export", "--format", "csv", "-o", ""], ["--output", "is empty"]),
    ],
    ids=lambda x: " ".join(x) or "(nothing)",
)
def test_bad_command_line(argv, needles, capsys) -> None:
    code, out, err = run_main(argv, capsys)
    assert_one_line_error(code, out, err, *needles)


# A few of the above as real processes, so "no traceback reaches the user" is tested end to end.
@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["summary", "--d-model", "15"], ["d_model = 15"]),
        (["summary", "--beta1", "1.0"], ["beta1 = 1.0"]),
        (["export", "--sentence", "I love transformers"], ["'love'"]),
        (["summary", "--d-modle", "32"], ["--d-modle 32", "--d-model"]),
        (["summary", "--config", "missing.toml"], ["config file 'missing.toml'"]),
        (["summary", "--config", "."], ["config file '.'", "Is a directory"]),
        (["summary", "--config", "broken.toml"], ["config file 'broken.toml'", "not valid TOML"]),
        (["summary", "--config", "typo.toml"], ["unknown key 'd_modle' = 32", "'d_model'"]),
        (["summary", "--config", "string.toml"], ["heads = '2'"]),
    ],
)
def test_errors_as_a_process(argv, needles, tmp_path) -> None:
    (tmp_path / "broken.toml").write_text("d_model = = 3\n")
    (tmp_path / "typo.toml").write_text("d_modle = 32\n")
    (tmp_path / "string.toml").write_text('heads = "2"\n')
    proc = run_process(argv, tmp_path)
    assert_one_line_error(proc.returncode, proc.stdout, proc.stderr, *needles)


def test_version_and_help_as_a_process(tmp_path) -> None:
    version = run_process(["--version"], tmp_path)
    assert (version.returncode, version.stderr) == (0, "")
    assert version.stdout.strip() == f"workbook {__version__}"
    for argv in (["--help"], ["summary", "--help"], ["export", "--help"]):
        proc = run_process(argv, tmp_path)
        assert (proc.returncode, proc.stderr) == (0, ""), argv
        assert proc.stdout.startswith("usage: workbook"), argv
    assert "--d-model" in proc.stdout and "--format" in proc.stdout


def test_version_and_help_in_process(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"workbook {__version__}"
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "summary" in out and "export" in out


def test_summary(capsys) -> None:
    code, out, err = run_main(["summary"], capsys)
    assert (code, err) == (0, "")
    trace = engine.run(Config())
    largest = {n: float(np.abs(trace[f"d.{n}"]).max()) for n in params.names(Config())}
    top = max(largest, key=largest.get)
    assert top == "W_lm"
    lines = out.splitlines()
    assert "3,456" in out
    assert any(line.split() == ["total", "3,456"] for line in lines)
    assert "Loss: 1.829868" in lines
    assert f"Largest gradient: |dL/d{top}| = {largest[top]:.6g}" in lines
    for name, count in params.count(Config()).items():
        assert any(line.split()[:1] == [name] and line.endswith(f"{count:,}") for line in lines)


def test_summary_as_a_process(tmp_path) -> None:
    proc = run_process(["summary"], tmp_path)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert "3,456" in proc.stdout and "Loss: 1.829868" in proc.stdout
    assert "|dL/dW_lm|" in proc.stdout


def test_a_closed_standard_output_is_said(tmp_path) -> None:
    """summary >&- once exited 0 with its output lost."""
    import os

    closed = subprocess.run(
        [sys.executable, "-m", "workbook", "summary"],
        stdout=None,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
        preexec_fn=lambda: os.close(1),
        timeout=120,
    )
    assert closed.returncode == 2
    assert closed.stderr == "workbook summary: standard output is closed\n"


def test_toml_overrides_defaults_and_flags_override_toml(tmp_path, capsys) -> None:
    path = tmp_path / "model.toml"
    path.write_text('heads = 4\nd_ff = 32\nsentence = "I like"\nlr = 0.01\n')
    code, out, err = run_main(
        [
            "export",
            "--format",
            "json",
            "--output",
            "-",
            "--config",
            str(path),
            "--d-ff",
            "8",
            "--lr",
            "0.5",
        ],
        capsys,
    )
    assert (code, err) == (0, "")
    config = json.loads(out)["config"]
    assert config["heads"] == 4  # from the file
    assert config["sentence"] == "I like"  # from the file
    assert config["d_ff"] == 8  # the flag wins over the file
    assert config["lr"] == 0.5  # the flag wins over the file
    assert config["d_model"] == 16 and config["seed"] == 42  # defaults
    assert config["tokens"] == [1, 3, 4, 2]
    assert config["d_k"] == 4


def test_load_layers() -> None:
    assert load() == Config()
    assert isinstance(load().vocab, tuple) and hash(load()) == hash(Config())
    assert load(None, {"heads": "4"}) == Config(heads=4)
    assert load(None, {"vocab": "<PAD>,<BOS>,<EOS>,a,b", "sentence": "b a"}).tokens == (1, 4, 3, 2)
    with pytest.raises(ConfigError, match=r"unknown key 'hedas' = '4': did you mean 'heads'\?"):
        load(None, {"hedas": "4"})


def test_summary_reflects_a_toml_file(tmp_path, capsys) -> None:
    path = tmp_path / "model.toml"
    path.write_text("d_model = 8\nd_ff = 4\n")
    code, out, _ = run_main(["summary", "--config", str(path)], capsys)
    assert code == 0
    expected = sum(params.count(Config(d_model=8, d_ff=4)).values())
    assert any(line.split() == ["total", f"{expected:,}"] for line in out.splitlines())
    assert "d_model 8, heads 2 (d_k = d_v = 4), d_ff 4" in out


# --- inputs that once crashed, or were read as something else ----------------------------
CRASHES = [
    ("a = " + "[" * 2000 + "]" * 2000, "nested too deeply"),
    ("seed = " + "9" * 5000, "a number far too long"),
    ("lr = " + "9" * 400, "too large a number"),
]


@pytest.mark.parametrize(("toml", "message"), CRASHES)
def test_a_config_that_once_crashed_gets_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], toml: str, message: str
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(toml + "\n")
    assert cli.main(["summary", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and len(err) < 200, err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["build", "--tex-only", "--chapters", "9" * 5000], "chapters are 1-13"),
        (["build", "--tex-only", "--chapters", "٢"], "use numbers and ranges"),
        (["build", "--tex-only", "--digits", "٤"], "digits 0-9"),
        (["summary", "--seed", "٣"], "digits 0-9"),
        (["summary", "--seed", "9" * 5000], "far too large"),
        (["handouts", "--key-for", "X", "--class-seed", "-1"], "outside 0 to 2**63"),
        (["handouts", "--key-for", "X", "--class-seed", "２"], "digits 0-9"),
        (["summary", "--sentence", "like " * 100000 + "zzz"], "is not in the vocabulary"),
    ],
)
def test_numbers_are_ascii_digits_and_values_are_cut_in_messages(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert cli.main([*argv, *(["-o", str(tmp_path / "o")] if argv[0] != "summary" else [])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err and len(err) < 400, err[:500]
    assert not (tmp_path / "o").exists()


def test_leading_zeros_and_a_bom_read_as_meant(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_bytes("\ufeffd_model = 8\n".encode())
    assert cli.main(["summary", "--config", str(config)]) == 0
    for flag in (["--chapters", "02"], ["--sections", "02.1"]):
        assert cli.main(["build", "--tex-only", "-q", "-o", str(tmp_path / "o"), *flag]) == 0


def test_a_folder_that_cannot_be_written_names_itself_and_exits_5(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    if os.geteuid() == 0:  # root writes anywhere: a file where the folder goes instead
        blocked = tmp_path / "file"
        blocked.write_text("x")
        out = blocked / "o"
    else:
        blocked = tmp_path / "ro"
        blocked.mkdir(mode=0o500)
        out = blocked / "o"
    assert cli.main(["build", "--tex-only", "-q", "-o", str(out)]) == 5
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(blocked) in err, err


def test_progress_is_a_line_a_tenth_in_a_log_and_one_updating_line_on_a_terminal() -> None:
    import io

    from workbook.progress import Progress

    log = io.StringIO()
    p = Progress("handouts compiled:", 30, out=log)
    for _ in range(30):
        p.step()
    lines = log.getvalue().splitlines()
    assert len(lines) == 10 and lines[-1] == "workbook: handouts compiled: 30/30"

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Terminal()
    p = Progress("handouts compiled:", 30, out=tty)
    for _ in range(30):
        p.step()
    assert tty.getvalue().count("\n") == 1 and tty.getvalue().count("\r") == 30


def test_exercises_lists_every_number_with_what_it_asks_and_minutes(capsys) -> None:
    assert cli.main(["exercises", "--preset", "classroom"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines()[1:-2]}
    assert "2.1" in rows and "13.16" in rows and "13.17" in rows  # AdamW, its derivation
    # cells, products, values on the way, and the time: 7 × 10 s + 28 × 15 s = 8 min 10 s
    assert rows["2.1"].split()[-4:] == ["7", "28", "0", "8:10"]
    assert rows["7.5"].split()[-1] == "0:10"  # one value: not 0 minutes
    seconds = [int(m) * 60 + int(s) for m, s in (r.split()[-1].split(":") for r in rows.values())]
    total = out.splitlines()[-2].split()[-1]
    assert f"{sum(seconds) // 60}:{sum(seconds) % 60:02d}" == total  # the lines add up
    assert "Derivation" in rows["8.3"] and "15 s a product" in out
    assert "AdamW update of W_lm" in rows["13.16"]  # as the handout titles it: m, v and θ'
    assert cli.main(["exercises", "--sections", "3.3"]) == 0  # the seed model too
    assert "Softmax" in capsys.readouterr().out


def test_a_selection_longer_than_the_lesson_is_said_even_quietly(tmp_path: Path, capsys) -> None:
    from workbook.config import preset
    from workbook.handouts import Classroom, HandoutRequest
    from workbook.render import Options

    roster = tmp_path / "r.csv"
    roster.write_text("id,name\ns1,A\n")
    opts = Options(scaffold="faded", givens="start")
    c = preset("classroom")
    for minutes, said in ((50, True), (500, False)):
        req = HandoutRequest(
            tmp_path, opts, roster, sections="2.1-3.3", quiet=True, minutes=minutes
        )
        room = Classroom(c, req)
        reader, variant = room.readers()[0]
        room.plan(room.part(reader, variant).handout)
        err = capsys.readouterr().err
        assert ("more than --minutes 50" in err) == said and err.count("\n") == said, err
        if said:  # the time as `workbook exercises` gives it: the lines there add up to it
            assert re.search(r"takes about \d+:\d\d \(minutes:seconds\) by hand", err), err
