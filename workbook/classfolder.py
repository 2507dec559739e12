"""A class folder knows itself: `class.toml`, written by `workbook handouts`, holds every
setting that shaped the class, so a key for one code (`--key-for CODE --class DIR`) and the
grading (`workbook grade --class DIR`) need nothing else typed again."""

from __future__ import annotations

import hashlib
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .config import Config, ConfigError, from_mapping, read_small
from .render.base import FONT_SIZES, GIVENS, LAYOUTS, PAPERS, SCAFFOLDS

CLASS_FILE = "class.toml"


@dataclass(frozen=True)
class ClassSettings:
    """What `workbook handouts` was given, resolved: the model (every key), the selection,
    the class seed and how the pages print."""

    config: Config
    chapters: str | None
    sections: str | None
    class_seed: int
    digits: int
    paper: str
    layout: str
    scaffold: str
    givens: str
    roster_sha256: str = ""
    version: str = __version__
    font_size: int = 10
    sans: bool = False


def roster_hash(path: Path | None) -> str:
    return "" if path is None else hashlib.sha256(path.read_bytes()).hexdigest()


def _toml(value: Any) -> str:
    """A TOML value: strings in basic quotes (every control character escaped)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(value)
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    out = []
    for ch in str(value):
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def dumps(s: ClassSettings) -> bytes:
    lines = [
        "# Written by `workbook handouts`: the settings this class's handouts were made with.",
        "# `workbook grade --class DIR` and `workbook handouts --key-for CODE --class DIR`",
        "# read them from here; edit nothing, or the keys no longer match the handouts.",
        f"version = {_toml(s.version)}",
        f"class_seed = {s.class_seed}",
        f"chapters = {_toml(s.chapters or '')}",
        f"sections = {_toml(s.sections or '')}",
        f"digits = {s.digits}",
        f"paper = {_toml(s.paper)}",
        f"layout = {_toml(s.layout)}",
        f"scaffold = {_toml(s.scaffold)}",
        f"givens = {_toml(s.givens)}",
        f"font_size = {s.font_size}",
        f"sans = {_toml(s.sans)}",
        f"roster_sha256 = {_toml(s.roster_sha256)}",
        "",
        "[model]",
        *(f"{k} = {_toml(v)}" for k, v in s.config.to_dict().items()),
    ]
    return ("\n".join(lines) + "\n").encode()


CHOICES = {"paper": PAPERS, "layout": LAYOUTS, "scaffold": SCAFFOLDS, "givens": GIVENS}


def load(folder: Path) -> ClassSettings:
    """The settings of the class in `folder`; one line naming the problem otherwise."""
    path = folder / CLASS_FILE
    where = f"--class {str(folder)!r}"
    try:
        text = read_small(path, f"{where}: {CLASS_FILE}").decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(
            f"{where}: no {CLASS_FILE} there; give the folder `workbook handouts` wrote"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8"
        raise ConfigError(f"{where}: cannot read {CLASS_FILE} ({reason})") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: {CLASS_FILE} is not valid TOML ({exc})") from None
    try:
        model = table["model"]
        config = from_mapping(dict(model))
        settings = ClassSettings(
            config,
            str(table["chapters"]) or None,
            str(table["sections"]) or None,
            int(table["class_seed"]),
            int(table["digits"]),
            str(table["paper"]),
            str(table["layout"]),
            str(table["scaffold"]),
            str(table["givens"]),
            str(table.get("roster_sha256", "")),
            str(table.get("version", "")),
            int(table.get("font_size", 10)),
            bool(table.get("sans", False)),
        )
    except KeyError as exc:
        raise ConfigError(f"{where}: {CLASS_FILE} has no {exc.args[0]!r}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {CLASS_FILE}: {exc}") from None
    if settings.font_size not in FONT_SIZES:
        raise ConfigError(
            f"{where}: {CLASS_FILE}: font_size must be {FONT_SIZES[0]}-{FONT_SIZES[-1]}"
        )
    for key, allowed in CHOICES.items():
        if getattr(settings, key) not in allowed:
            raise ConfigError(f"{where}: {CLASS_FILE}: {key} must be one of {', '.join(allowed)}")
    return settings
