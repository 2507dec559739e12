"""The model and optimiser settings: one frozen dataclass, defaults from the seed.

Values come from three layers, later ones winning: the defaults below, a TOML file
(`--config FILE`), then command-line flags. Every check raises `ConfigError` with one
line that names the key, the value and what is allowed.
"""

from __future__ import annotations

import difflib
import math
import re
import stat
import tomllib
import unicodedata
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

PAD, BOS, EOS = "<PAD>", "<BOS>", "<EOS>"
SPECIALS = (PAD, BOS, EOS)


class ConfigError(ValueError):
    """A bad setting; its message is the single line the user sees."""


# Upper bounds on everything a setting can make big: the workbook lays out every element.
LIMITS = {"d_model": 128, "d_ff": 512, "max_len": 64, "vocab": 64, "word": 64, "layers": 8}
# The model families: "seed" is the seed's block, y = LN(A + FFN(A)) with A = MHA(x);
# "gpt2" the pre-LN GPT-2 block, h = x + MHA(LN1(x)), y = h + FFN(LN2(h)), with a final LN.
MODELS = ("seed", "gpt2")
# A model a class can do by hand: no sum of more than 8 products, a 2-word sentence (4 tokens
# with BOS and EOS). Its init scale and seed come from the search in
# scripts/classroom_preset.py: the scale with the most "lively" seeds, its first lively seed.
CLASS_MODEL = {"d_model": 4, "heads": 2, "d_ff": 8, "max_len": 4, "sentence": "I like"}
PRESETS: dict[str, dict[str, Any]] = {
    "classroom": CLASS_MODEL | {"init_scale": 0.6, "seed": 0},
}
# Ranges of the real-valued settings: (key, lowest, highest, lowest included).
RANGES = (
    ("ln_eps", 0.0, 1.0, False),
    ("init_scale", 0.0, 10.0, False),
    ("lr", 0.0, 1.0, False),
    ("adam_eps", 0.0, 1.0, False),
    ("weight_decay", 0.0, 100.0, True),
)
# Characters a word may use: those the workbook's fonts print exactly (pdflatex, T1, Latin
# Modern). Printable ASCII and Latin-1 / Latin Extended-A, less what T1 cannot set (Ħ ĸ Ŀ ŉ
# Ŧ ſ …) and the invisible soft hyphen. Spaces, tabs and control characters never.
# Ĳ ĳ are in T1 but not in Latin Modern's typewriter font, which sets the token lists.
_NOT_IN_T1 = {0xAD, 0x126, 0x127, 0x132, 0x133, 0x138, 0x13F, 0x140, 0x149, 0x166, 0x167, 0x17F}
WORD_CHARS = frozenset(
    [chr(c) for c in range(0x21, 0x7F)]
    + [chr(c) for c in range(0xA1, 0x180) if c not in _NOT_IN_T1]
)


@dataclass(frozen=True)
class Config:
    preset: str = ""  # a named set of defaults (PRESETS); "" for the seed's
    model: str = "seed"
    layers: int = 1
    vocab: tuple[str, ...] = (PAD, BOS, EOS, "I", "like", "transformers")
    sentence: str = "I like transformers"
    d_model: int = 16
    heads: int = 2
    d_ff: int = 64
    max_len: int = 5
    ln_eps: float = 1e-5
    seed: int = 42
    init_scale: float = 0.1
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    adam_eps: float = 1e-8
    weight_decay: float = 0.01
    # Not a user setting: filled by __post_init__ so the rest of the code never re-tokenises.
    tokens: tuple[int, ...] = field(default=(), init=False, compare=False)

    def __post_init__(self) -> None:
        # to_dict() gives vocab as a list; keep the field a tuple whatever it was built from.
        object.__setattr__(self, "vocab", tuple(self.vocab))
        _validate(self)
        object.__setattr__(self, "tokens", _tokenize(self))

    @property
    def d_k(self) -> int:
        return self.d_model // self.heads

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def T(self) -> int:
        """Sequence length, BOS and EOS included."""
        return len(self.tokens)

    def to_dict(self) -> dict[str, Any]:
        """The user-settable keys, JSON/TOML friendly."""
        d = asdict(self)
        d.pop("tokens")
        d["vocab"] = list(self.vocab)
        return d


_TEXT_KEYS = ("sentence", "model", "preset")
_INT_KEYS = ("layers", "d_model", "heads", "d_ff", "max_len", "seed")
_FLOAT_KEYS = ("ln_eps", "init_scale", "lr", "beta1", "beta2", "adam_eps", "weight_decay")
KEYS = tuple(f.name for f in fields(Config) if f.init)


def _range(key: str) -> str:
    _, low, high, closed = next(r for r in RANGES if r[0] == key)
    return f"{'[' if closed else '('}{low:g}, {high:g}]"


# One line per key for --help and docs/cli.md: what it sets and what it may be.
HELP: dict[str, str] = {
    "preset": "a named set of defaults: classroom = a model a class does by hand "
    "(d_model 4, 2 heads, d_ff 8, a 2-word sentence)",
    "model": "seed = the seed's block, LN(A + FFN(A)); gpt2 = the pre-LN GPT-2 block with "
    "a final LayerNorm",
    "layers": f"blocks stacked, 1-{LIMITS['layers']}",
    "vocab": f"the words, apart by commas or spaces; must hold {' '.join(SPECIALS)}; "
    f"at most {LIMITS['vocab']} words of at most {LIMITS['word']} characters",
    "sentence": "the training sentence, words of the vocabulary apart by spaces "
    "(BOS and EOS are added)",
    "d_model": f"width of the model, 1-{LIMITS['d_model']}, divisible by --heads",
    "heads": "attention heads; each gets d_model / heads columns",
    "d_ff": f"width of the feed-forward layer, 1-{LIMITS['d_ff']}",
    "max_len": f"positions of E_pos, 1-{LIMITS['max_len']}; the sentence with BOS and EOS must fit",
    "ln_eps": f"LayerNorm's ε, {_range('ln_eps')}",
    "seed": "seed of Python's random for the weights, 0 to 2**63 - 1",
    "init_scale": f"standard deviation of the initial weights, {_range('init_scale')}",
    "lr": f"AdamW's learning rate η, {_range('lr')}",
    "beta1": "AdamW's β₁, [0, 1)",
    "beta2": "AdamW's β₂, [0, 1)",
    "adam_eps": f"AdamW's ε, {_range('adam_eps')}",
    "weight_decay": f"AdamW's decoupled weight decay λ, {_range('weight_decay')}",
}


def _validate(c: Config) -> None:
    if c.preset and c.preset not in PRESETS:
        raise ConfigError(f"preset = {c.preset!r}: must be one of {', '.join(PRESETS)}")
    if c.model not in MODELS:
        close = difflib.get_close_matches(str(c.model), MODELS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"model = {c.model!r}: must be one of {', '.join(MODELS)}{hint}")
    for key in ("layers", "d_model", "heads", "d_ff", "max_len"):
        if getattr(c, key) < 1:
            raise ConfigError(f"{key} = {getattr(c, key)}: must be a positive integer")
        if key in LIMITS and getattr(c, key) > LIMITS[key]:
            raise ConfigError(
                f"{key} = {getattr(c, key)}: at most {LIMITS[key]} (every element is printed)"
            )
    # Python's random seeds with |seed|: -1 would draw the weights of 1
    if not 0 <= c.seed < 2**63:
        raise ConfigError(f"seed = {c.seed}: must be in [0, 2**63)")
    if c.d_model % c.heads:
        raise ConfigError(
            f"d_model = {c.d_model}: must be divisible by heads = {c.heads} "
            f"(each head gets d_model / heads columns)"
        )
    for key, low, high, closed in RANGES:
        value = getattr(c, key)
        above = value >= low if closed else value > low
        if not (above and value <= high and math.isfinite(value)):
            sign = ">=" if closed else ">"
            raise ConfigError(f"{key} = {value}: must be a number {sign} {low:g} and <= {high:g}")
    for key in ("beta1", "beta2"):
        value = getattr(c, key)
        if not 0 <= value < 1:
            raise ConfigError(f"{key} = {value}: must be in [0, 1)")
    missing = [s for s in SPECIALS if s not in c.vocab]
    if missing:
        raise ConfigError(f"vocab = {list(c.vocab)}: must contain {', '.join(missing)}")
    dupes = sorted({w for w in c.vocab if c.vocab.count(w) > 1})
    if dupes:
        raise ConfigError(f"vocab = {list(c.vocab)}: repeated word {dupes[0]!r}")
    if len(c.vocab) > LIMITS["vocab"]:
        raise ConfigError(f"vocab: {len(c.vocab)} words, at most {LIMITS['vocab']}")
    for w in c.vocab:
        _check_word(w)


def _check_word(w: str) -> None:
    """A word prints exactly as typed, or is refused here, naming the character."""
    if not w:
        raise ConfigError("vocab: a word is empty")
    if len(w) > LIMITS["word"]:
        raise ConfigError(f"vocab word {w!r}: {len(w)} characters, at most {LIMITS['word']}")
    bad = next((ch for ch in w if ch not in WORD_CHARS), None)
    if bad is not None:
        name = unicodedata.name(bad, "a control character")
        raise ConfigError(
            f"vocab word {w!r}: character U+{ord(bad):04X} ({name}) cannot be printed; words "
            "use printable ASCII and the Latin letters of U+00A1-U+017F that the fonts have "
            "(all but Ħ ħ Ĳ ĳ ĸ Ŀ ŀ ŉ Ŧ ŧ ſ), without spaces"
        )


def _tokenize(c: Config) -> tuple[int, ...]:
    bad = next((ch for ch in c.sentence if ch not in WORD_CHARS and ch != " "), None)
    if bad is not None:
        name = unicodedata.name(bad, "a control character")
        raise ConfigError(
            f"sentence = {c.sentence!r}: character U+{ord(bad):04X} ({name}) cannot be "
            "printed; words are apart by spaces"
        )
    words = c.sentence.split(" ")
    words = [w for w in words if w]
    allowed = [w for w in c.vocab if w not in SPECIALS]
    for w in words:
        if w not in allowed:
            raise ConfigError(
                f"sentence = {c.sentence!r}: word {w!r} is not in the vocabulary "
                f"(allowed: {', '.join(allowed)})"
            )
    ids = [c.vocab.index(BOS), *(c.vocab.index(w) for w in words), c.vocab.index(EOS)]
    if len(ids) > c.max_len:
        raise ConfigError(
            f"sentence = {c.sentence!r}: {len(ids)} tokens with BOS and EOS, "
            f"more than max_len = {c.max_len}"
        )
    if len(ids) < 2:
        raise ConfigError(f"sentence = {c.sentence!r}: needs at least 2 tokens")
    return tuple(ids)


def _coerce(key: str, value: Any, from_text: bool) -> Any:
    """Check one raw value's type and convert it; `from_text` values (CLI flags) are parsed."""
    if not from_text and key not in _TEXT_KEYS and isinstance(value, str):
        kind = "a list of strings" if key == "vocab" else "a number, not a string"
        raise ConfigError(f"{key} = {value!r}: must be {kind}")
    if key in _INT_KEYS:
        if isinstance(value, str):
            return whole_number(value, f"{key} = {value!r}")
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} = {value!r}: must be an integer")
        return value
    if key in _FLOAT_KEYS:
        if isinstance(value, str):
            if not FLOAT.fullmatch(value.strip()):
                raise ConfigError(f"{key} = {value!r}: must be a number")
            value = value.strip()
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(f"{key} = {value!r}: must be a number")
        try:
            return float(value)
        except (OverflowError, ValueError):  # an integer beyond any float
            raise ConfigError(f"{key} = {value!r}: too large a number") from None
    if key in _TEXT_KEYS:
        if not isinstance(value, str):
            raise ConfigError(f"{key} = {value!r}: must be a string")
        return value if key == "sentence" else value.strip()
    if key == "vocab":
        if isinstance(value, str):  # words apart by commas or spaces: a tab stays in its word
            value = [w for w in re.split("[ ,]+", value) if w]
        if not isinstance(value, list | tuple) or not all(isinstance(w, str) for w in value):
            raise ConfigError(f"vocab = {value!r}: must be a list of strings")
        return tuple(value)
    raise AssertionError(key)


# Numbers as typed: ASCII digits only (a ٢ or a fullwidth ２ is refused, never read as 2),
# and few enough that no conversion stalls on them.
WHOLE = re.compile(r"[+-]?[0-9]+")
FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(inf|nan)", re.I)
MAX_DIGITS = 30


def whole_number(text: str, what: str) -> int:
    """A whole number typed in ASCII digits (at most MAX_DIGITS), or one ConfigError line."""
    t = text.strip()
    if not WHOLE.fullmatch(t):
        raise ConfigError(f"{what}: must be a whole number in digits 0-9")
    if len(t.lstrip("+-")) > MAX_DIGITS:
        raise ConfigError(f"{what}: a number of {len(t.lstrip('+-'))} digits, far too large")
    return int(t)


def _check_known(key: str, value: Any) -> None:
    if key not in KEYS:
        close = difflib.get_close_matches(key, KEYS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(KEYS)}"
        raise ConfigError(f"unknown key {key!r} = {value!r}: {hint}")


def preset(name: str) -> Config:
    """The defaults of a preset: the seed's, with the preset's values over them."""
    if name not in PRESETS:
        close = difflib.get_close_matches(name, PRESETS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"preset = {name!r}: must be one of {', '.join(PRESETS)}{hint}")
    return Config(preset=name, **PRESETS[name])


def from_mapping(
    values: dict[str, Any], base: Config | None = None, from_text: bool = False
) -> Config:
    """A Config from `base` (defaults if None) with `values` laid over it. A `preset` among
    the values replaces the base by the preset's defaults first; the other values win."""
    if "preset" in values:
        name = _coerce("preset", values["preset"], from_text)
        base = preset(name) if name else Config()
        values = {k: v for k, v in values.items() if k != "preset"}
    merged = (base or Config()).to_dict()
    for key, value in values.items():
        _check_known(key, value)
        merged[key] = _coerce(key, value, from_text)
    return Config(**merged)


MAX_FILE_BYTES = 1 << 20  # a config file or a roster: far more than any needs


def read_small(path: Path, where: str, limit: int | None = None) -> bytes:
    """A regular file's bytes, at most `limit` (MAX_FILE_BYTES): a device (/dev/zero) or a
    FIFO would be read forever or block. OSError for the caller to name (missing, folder,
    permission)."""
    limit = MAX_FILE_BYTES if limit is None else limit
    try:
        info = path.stat()
    except OSError:
        info = None  # the open below raises what is wrong
    if info is not None and not stat.S_ISDIR(info.st_mode) and not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{where}: not a regular file")
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ConfigError(f"{where}: larger than {limit // 1024} KiB")
    return data


def read_text(path: Path, where: str, limit: int | None = None, hint: str = "") -> str:
    """A small UTF-8 text file (a roster, an answers sheet), a BOM allowed; every problem one
    ConfigError line that starts with `where`."""
    try:
        return read_small(path, where, limit).decode("utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{where}: no such file") from None
    except IsADirectoryError:
        raise ConfigError(f"{where}: is a folder, not a CSV file") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: not UTF-8 text{hint}") from None


def read_toml(path: Path) -> dict[str, Any]:
    """The raw key/value table of a TOML config file."""
    try:
        text = read_small(path, f"config file {str(path)!r}").decode("utf-8-sig")  # a BOM too
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"config file {str(path)!r}: cannot read it ({reason})") from None
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {str(path)!r}: not valid TOML ({exc})") from None
    except RecursionError:
        raise ConfigError(f"config file {str(path)!r}: nested too deeply to be a config") from None
    except ValueError:  # an integer of more digits than Python converts
        raise ConfigError(f"config file {str(path)!r}: a number far too long") from None
    for key, value in table.items():
        if isinstance(value, dict):
            raise ConfigError(
                f"config file {str(path)!r}: [{key}] tables are not used; put keys at top level"
            )
    return table


def load(path: Path | None = None, flags: dict[str, str] | None = None) -> Config:
    """Defaults (a preset's, when the flags or the file name one: the flag wins), then the
    TOML file, then command-line flags (text, parsed here)."""
    table = read_toml(path) if path is not None else {}
    flags = dict(flags or {})
    if "preset" in flags:
        name = _coerce("preset", flags.pop("preset"), from_text=True)
    else:
        name = _coerce("preset", table.get("preset", ""), from_text=False)
    base = preset(name) if name else Config()
    table = {k: v for k, v in table.items() if k != "preset"}
    return from_mapping(flags, base=from_mapping(table, base=base), from_text=True)
