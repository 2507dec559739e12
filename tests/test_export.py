"""`workbook export`: the JSON schema, stdout output, NPZ and CSV, all round-tripping exactly."""

from __future__ import annotations

import csv
import errno
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from workbook import cli, engine, params
from workbook.config import Config
from workbook.export import csv_name, export_csv, sections, to_json_dict

CONFIG = Config()
TRACE = engine.run(CONFIG)
PARAMS = params.names(CONFIG)
ADAM_KINDS = ("m", "v", "m_hat", "v_hat", "updated")
HEADS = range(CONFIG.heads)

# The activations the schema promises.
ACTIVATIONS = [
    "X",
    *(f"{k}.{h}" for k in ("Q", "K", "V", "scores", "attn", "head") for h in HEADS),
    "concat",
    "attn_out",
    "ffn_hidden",
    "ffn_act",
    "ffn_out",
    "residual",
    "ln_out",
    "logits",
    "probs",
    "loss_per_position",
    "loss",
]
ACTIVATION_GRADIENTS = [
    "d.X",
    *(f"d.{k}.{h}" for k in ("Q", "K", "V", "scores", "attn", "head") for h in HEADS),
    "d.concat",
    "d.attn_out",
    "d.ffn_hidden",
    "d.ffn_act",
    "d.ffn_out",
    "d.residual",
    "d.ln_out",
    "d.logits",
    "d.probs",
]


def export(argv: list[str], capsys) -> str:
    code = cli.main(["export", *argv])
    captured = capsys.readouterr()
    assert (code, captured.err) == (0, ""), captured.err
    return captured.out


def engine_value(section: str, name: str) -> np.ndarray:
    """The trace array a (section, name) entry of the export must hold."""
    if section == "gradients":
        return TRACE[f"d.{name}"] if name in PARAMS else TRACE[name]
    if section.startswith("adamw"):
        return TRACE[f"{section.split('.')[1]}.{name}"]
    return TRACE[name]


def from_json(value) -> np.ndarray:
    """Nested lists back to an array, as the README says: null (a masked score) back to
    -inf, the strings "inf", "-inf", "nan" through float()."""

    def fix(v):
        if isinstance(v, list):
            return [fix(x) for x in v]
        return -np.inf if v is None else float(v)

    return np.array(fix(value), dtype=np.float64)


@pytest.fixture(scope="module")
def json_doc(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("json") / "trace.json"
    assert cli.main(["export", "--format", "json", "--output", str(path)]) == 0
    assert [p.name for p in path.parent.iterdir()] == ["trace.json"]  # no temp files left
    return json.loads(path.read_text())


def test_json_top_level(json_doc) -> None:
    assert list(json_doc) == ["config", "parameters", "activations", "gradients", "adamw"]
    assert set(json_doc["adamw"]) == set(ADAM_KINDS)
    for kind in ADAM_KINDS:
        assert list(json_doc["adamw"][kind]) == PARAMS


def test_json_config(json_doc) -> None:
    assert json_doc["config"] == CONFIG.to_dict() | {"tokens": [1, 3, 4, 5, 2], "d_k": 8, "T": 5}


def test_json_names(json_doc) -> None:
    assert list(json_doc["parameters"]) == PARAMS
    assert len(PARAMS) == 16
    assert set(ACTIVATIONS) <= set(json_doc["activations"])
    assert not any(n.startswith("d.") for n in json_doc["activations"])
    gradients = set(json_doc["gradients"])
    assert set(PARAMS) <= gradients
    assert set(ACTIVATION_GRADIENTS) <= gradients
    assert not {f"d.{p}" for p in PARAMS} & gradients  # parameters are keyed by bare name


def test_json_masked_scores_are_null(json_doc) -> None:
    T = CONFIG.T
    for h in HEADS:
        rows = json_doc["activations"][f"scores.{h}"]
        assert len(rows) == T
        for i, row in enumerate(rows):
            for j, v in enumerate(row):
                if j > i:
                    assert v is None, (h, i, j)
                else:
                    assert isinstance(v, float), (h, i, j)
        # the gradient of a masked score is a plain zero, not null
        assert json_doc["gradients"][f"d.scores.{h}"][0][T - 1] == 0.0


def test_json_values_round_trip(json_doc) -> None:
    count = 0
    for section in ("parameters", "activations", "gradients"):
        for name, value in json_doc[section].items():
            expected = engine_value(section, name)
            got = from_json(value)
            assert got.shape == expected.shape, (section, name)
            np.testing.assert_array_equal(got, expected, err_msg=f"{section}/{name}")
            count += 1
    for kind in ADAM_KINDS:
        for name, value in json_doc["adamw"][kind].items():
            np.testing.assert_array_equal(from_json(value), TRACE[f"{kind}.{name}"])
            count += 1
    assert count >= 16 + len(ACTIVATIONS) + 16 + len(ACTIVATION_GRADIENTS) + 5 * 16
    assert json_doc["activations"]["loss"] == float(TRACE["loss"])


def test_json_to_stdout(json_doc, capsys) -> None:
    out = export(["--format", "json", "--output", "-"], capsys)
    assert json.loads(out) == json_doc
    assert export(["--format", "json"], capsys) == out  # "-" is the default


def test_json_to_stdout_as_a_process(json_doc, tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "workbook", "export", "--format", "json", "--output", "-"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert (proc.returncode, proc.stderr) == (0, "")
    assert json.loads(proc.stdout) == json_doc
    assert list(tmp_path.iterdir()) == []


def test_export_follows_the_flags(capsys) -> None:
    doc = json.loads(export(["--heads", "4", "--sentence", "like I"], capsys))
    assert doc["config"]["heads"] == 4 and doc["config"]["tokens"] == [1, 4, 3, 2]
    assert {f"W_Q.{h}" for h in range(4)} <= set(doc["parameters"])
    assert np.array(doc["activations"]["Q.3"]).shape == (4, 4)


def test_npz(tmp_path, capsys) -> None:
    path = tmp_path / "trace.npz"
    export(["--format", "npz", "--output", str(path)], capsys)
    with np.load(path) as npz:
        keys = set(npz.files)
        assert json.loads(str(npz["config"]))["tokens"] == [1, 3, 4, 5, 2]
        expected_keys = {"config"}
        expected_keys |= {f"parameters/{p}" for p in PARAMS}
        expected_keys |= {f"gradients/{p}" for p in PARAMS}
        expected_keys |= {f"activations/{a}" for a in ACTIVATIONS}
        expected_keys |= {f"gradients/{g}" for g in ACTIVATION_GRADIENTS}
        expected_keys |= {f"adamw.{k}/{p}" for k in ADAM_KINDS for p in PARAMS}
        assert expected_keys <= keys
        for key in keys - {"config"}:
            section, name = key.split("/", 1)
            np.testing.assert_array_equal(npz[key], engine_value(section, name), err_msg=key)
        assert npz["activations/scores.0"][0, 1] == -np.inf


def read_csv(path: Path, shape: tuple[int, ...]) -> np.ndarray:
    with path.open(newline="") as f:
        rows = [[float(x) if x else -np.inf for x in row] for row in csv.reader(f)]
    return np.array(rows, dtype=np.float64).reshape(shape)


def test_csv(tmp_path, capsys) -> None:
    root = tmp_path / "csv"
    export(["--format", "csv", "--output", str(root)], capsys)
    assert json.loads((root / "config.json").read_text())["T"] == 5
    files = {p.relative_to(root).as_posix() for p in root.rglob("*.csv")}
    assert {f"parameters/{p}.csv" for p in PARAMS} <= files
    assert {f"activations/{csv_name(a)}.csv" for a in ACTIVATIONS} <= files
    assert {f"gradients/{csv_name(g)}.csv" for g in [*PARAMS, *ACTIVATION_GRADIENTS]} <= files
    assert {f"adamw/{k}/{p}.csv" for k in ADAM_KINDS for p in PARAMS} <= files
    assert "activations/E_pos_0_T.csv" in files  # portable: no brackets, no colon
    assert all(re.fullmatch(r"[A-Za-z0-9._/-]+", f) for f in files)
    assert not list(root.rglob("*.tmp"))
    names = {csv_name(n): n for group in sections(CONFIG, TRACE).values() for n in group}
    for rel in sorted(files):
        *folders, file = rel.split("/")
        section, name = ".".join(folders), names[file.removesuffix(".csv")]
        expected = engine_value(section, name)
        got = read_csv(root / rel, expected.shape)
        np.testing.assert_array_equal(got, expected, err_msg=rel)
    lines = (root / "activations" / "scores.1.csv").read_text().splitlines()
    assert len(lines) == CONFIG.T and lines[0].endswith(",,,,")  # masked cells are empty
    assert len((root / "parameters" / "W1.csv").read_text().splitlines()) == CONFIG.d_ff


def test_csv_into_a_folder_of_another_export_leaves_only_this_one(tmp_path, capsys) -> None:
    fresh, reused = tmp_path / "fresh", tmp_path / "reused"
    export(["--format", "csv", "--output", str(reused), "--layers", "2"], capsys)
    export(["--format", "csv", "--output", str(reused)], capsys)
    export(["--format", "csv", "--output", str(fresh)], capsys)
    files = {p.relative_to(fresh).as_posix() for p in fresh.rglob("*")}
    assert {p.relative_to(reused).as_posix() for p in reused.rglob("*")} == files


def test_csv_never_writes_or_removes_through_a_linked_folder(tmp_path, capsys) -> None:
    outside, root = tmp_path / "outside", tmp_path / "csv"
    outside.mkdir()
    root.mkdir()
    (outside / "precious.csv").write_text("x\n")
    (root / "activations").symlink_to(outside)
    assert cli.main(["export", "--format", "csv", "--output", str(root)]) == 2
    assert "is a symbolic link" in capsys.readouterr().err
    assert [p.name for p in outside.iterdir()] == ["precious.csv"]
    assert not (root / "parameters").exists()  # refused before anything was written


def test_csv_to_standard_output_is_refused(capsys) -> None:
    assert cli.main(["export", "--format", "csv", "--output", "-"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "give --output DIR" in err
    assert not Path("-").exists()


def test_a_write_error_names_the_target_not_a_temporary_file(tmp_path, monkeypatch, capsys) -> None:
    def full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", str(src))

    monkeypatch.setattr(os, "replace", full)
    target = tmp_path / "step.json"
    assert cli.main(["export", "--output", str(target)]) == 5  # an I/O error
    err = capsys.readouterr().err
    assert err == f"workbook: {target}: No space left on device\n"
    assert not list(tmp_path.iterdir())  # no half file, no temporary left


def non_finite_trace():
    """The default step with inf, -inf and nan put in by hand beside the masked scores (the
    engine's pre-flight refuses settings that make them, so no command can)."""
    t = engine.run(CONFIG)
    scores = t["scores.0"]
    assert np.isneginf(scores[0, 1])  # masked: above the diagonal
    scores[1, 0], scores[2, 1], scores[3, 3] = np.inf, -np.inf, np.nan  # not masked
    t["W1"][0, 0] = np.nan
    t["d.W1"][0, 1] = -np.inf
    t["v.W1"][0, 2] = np.inf
    return t


def test_json_writes_non_finite_values_as_strings_apart_from_masked_nulls() -> None:
    t = non_finite_trace()
    doc = json.loads(json.dumps(to_json_dict(CONFIG, t), allow_nan=False))  # strict JSON
    scores = doc["activations"]["scores.0"]
    assert scores[0][1:] == [None] * 4 and scores[1][2:] == [None] * 3  # masked
    assert (scores[1][0], scores[2][1], scores[3][3]) == ("inf", "-inf", "nan")
    assert isinstance(scores[2][0], float) and isinstance(scores[4][4], float)
    assert doc["parameters"]["W1"][0][0] == "nan"
    assert doc["gradients"]["W1"][0][1] == "-inf"
    assert doc["adamw"]["v"]["W1"][0][2] == "inf"
    nulls = [v for row in doc["gradients"]["d.scores.0"] for v in row if v is None]
    assert nulls == []  # a masked score's gradient is a plain zero
    np.testing.assert_array_equal(from_json(scores), t["scores.0"])  # the documented reading
    np.testing.assert_array_equal(from_json(doc["parameters"]["W1"]), t["W1"])


def test_csv_writes_non_finite_values_as_strings_apart_from_masked_empty_cells(
    tmp_path,
) -> None:
    t = non_finite_trace()
    export_csv(CONFIG, t, str(tmp_path))
    rows = list(csv.reader((tmp_path / "activations" / "scores.0.csv").open(newline="")))
    assert rows[0][1:] == [""] * 4 and rows[1][2:] == [""] * 3  # masked
    assert (rows[1][0], rows[2][1], rows[3][3]) == ("inf", "-inf", "nan")
    assert (tmp_path / "parameters" / "W1.csv").read_text().startswith("nan,")
    assert next(csv.reader((tmp_path / "gradients" / "W1.csv").open()))[1] == "-inf"
    assert next(csv.reader((tmp_path / "adamw" / "v" / "W1.csv").open()))[2] == "inf"
    for rel, name in [("activations/scores.0.csv", "scores.0"), ("parameters/W1.csv", "W1")]:
        np.testing.assert_array_equal(read_csv(tmp_path / rel, t[name].shape), t[name])
