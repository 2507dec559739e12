"""The trace as data: JSON (the documented schema), NPZ for NumPy, CSV for spreadsheets."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from . import params
from .config import Config, ConfigError
from .engine import ADAM_KEYS
from .trace import Trace


def sections(c: Config, t: Trace) -> dict[str, dict[str, np.ndarray]]:
    """The trace's values grouped as in the JSON schema (arrays, not yet lists)."""
    names = params.names(c)
    grads = {n: t[f"d.{n}"] for n in names}
    adam_names = {f"{k}.{n}" for k in ADAM_KEYS for n in names}
    derived = [s.name for s in t.steps if s.name not in adam_names]
    return {
        "parameters": {n: t[n] for n in names},
        "activations": {n: t[n] for n in derived if not n.startswith("d.")},
        "gradients": grads
        | {n: t[n] for n in derived if n.startswith("d.") and n[2:] not in grads},
        **{f"adamw.{k}": {n: t[f"{k}.{n}"] for n in names} for k in ADAM_KEYS},
    }


def config_dict(c: Config) -> dict[str, Any]:
    return c.to_dict() | {"tokens": list(c.tokens), "d_k": c.d_k, "T": c.T}


def cell(x: float, masked: bool) -> float | str | None:
    """One entry as data: a number; None where the causal mask leaves it undefined (a −∞
    score); "inf", "-inf" or "nan" for any other non-finite value, so the two never mix."""
    if math.isfinite(x):
        return x
    return None if masked else repr(x)  # float("inf"), float("nan") read them back


def _listify(a: np.ndarray, masked: np.ndarray) -> Any:
    """Nested lists of `cell`s."""
    if a.ndim == 0:
        return cell(float(a), bool(masked))
    return [_listify(x, m) for x, m in zip(a, masked, strict=True)]


def to_json_dict(c: Config, t: Trace) -> dict[str, Any]:
    sec = sections(c, t)

    def group(key: str) -> dict[str, Any]:
        return {n: _listify(a, t.masked(n)) for n, a in sec[key].items()}

    out: dict[str, Any] = {"config": config_dict(c)}
    for key in ("parameters", "activations", "gradients"):
        out[key] = group(key)
    out["adamw"] = {k: group(f"adamw.{k}") for k in ADAM_KEYS}
    return out


def write_atomic(path: Path, data: bytes) -> None:
    """Write beside the target, then rename: a failure never leaves half a file. An error
    names the target, never the private temporary file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; outputs are ordinary files
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def export_json(c: Config, t: Trace, output: str) -> None:
    text = json.dumps(to_json_dict(c, t), indent=1) + "\n"
    if output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()  # a reader that went away is seen here, as a BrokenPipeError
    else:
        write_atomic(Path(output), text.encode())


def export_npz(c: Config, t: Trace, output: str) -> None:
    """Keys are "<section>/<name>", e.g. "gradients/W_Q.0"; the config is a JSON string."""
    arrays = {f"{sec}/{n}": a for sec, group in sections(c, t).items() for n, a in group.items()}
    buf = io.BytesIO()
    np.savez(buf, config=np.array(json.dumps(config_dict(c))), **arrays)
    if output == "-":
        sys.stdout.buffer.write(buf.getvalue())
        sys.stdout.buffer.flush()
    else:
        write_atomic(Path(output), buf.getvalue())


def _csv_bytes(a: np.ndarray, masked: np.ndarray) -> bytes:
    """Masked entries are empty cells; numbers and "inf", "-inf", "nan" as `cell` gives."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row, mask in zip(np.atleast_2d(a), np.atleast_2d(masked), strict=True):
        cells = (cell(float(x), bool(m)) for x, m in zip(row, mask, strict=True))
        writer.writerow("" if v is None else repr(v) if isinstance(v, float) else v for v in cells)
    return buf.getvalue().encode()


def csv_name(name: str) -> str:
    """A file name every system accepts: E_pos[0:T] → E_pos_0_T."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_")


def _no_links_below(root: Path, folder: Path) -> None:
    """Refuse a section folder reached through a symbolic link under the output folder: its
    files would be written, and stale ones removed, somewhere else."""
    for part in [folder, *folder.parents]:
        if part == root or root not in part.parents:
            return
        if part.is_symlink():
            raise ConfigError(f"{part} is a symbolic link; the export writes only into {root}")


def export_csv(c: Config, t: Trace, output: str) -> None:
    """DIR/<section>/<name>.csv, one matrix per file; masked scores are empty cells."""
    if output == "-":
        raise ConfigError("--format csv writes a folder of files: give --output DIR, not -")
    root = Path(output)
    groups = sections(c, t)
    for sec in groups:  # every folder checked before anything is written
        _no_links_below(root, root.joinpath(*sec.split(".")))
    for sec, group in groups.items():
        folder = root.joinpath(*sec.split("."))
        written = set()
        for name, a in group.items():
            path = folder / f"{csv_name(name)}.csv"
            write_atomic(path, _csv_bytes(a, t.masked(name)))
            written.add(path.name)
        # a matrix of an earlier export into this folder (another model) does not stay
        # beside this one's: the folder holds one export
        for old in folder.glob("*.csv"):
            if old.name not in written:
                old.unlink()
    write_atomic(root / "config.json", (json.dumps(config_dict(c), indent=1) + "\n").encode())


EXPORTERS = {"json": export_json, "npz": export_npz, "csv": export_csv}
