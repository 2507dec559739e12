"""Classroom handouts: per-student variants of a class-sized model, and what makes one worth
a lesson.

A variant changes what a student computes, never how much: the same model size for everyone,
a sentence from the vocabulary and a seed derived from the class seed and the student's id.
Its code (printed on every page) holds the sentence and the seed, so a key is regenerated from
the code alone.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from . import engine
from .config import SPECIALS, Config, ConfigError, read_text
from .printed import UnprintableError
from .trace import Trace

# How far from uniform attention must be, how much of GELU's input must lie where its curve
# shows, and how small a gradient may be before it is negligible (scripts/classroom_preset.py).
ATTENTION_SPREAD = 0.1
GELU_BEND, GELU_SHARE = 0.5, 0.2
GRADIENT_FLOOR = 1e-3


def lively(t: Trace) -> bool:
    """Does this step show something? Attention clearly non-uniform (a weight at least 0.1
    away from 1/(i+1)), at least a fifth of the GELU inputs outside ±0.5, and every parameter
    with a gradient entry of at least 1e-3 (E_pos's unused rows aside)."""
    spread = 0.0
    for s in t.steps:
        if s.desc.role == "attn":
            A = t[s.name]
            for i in range(1, A.shape[0]):
                spread = max(spread, float(np.max(np.abs(A[i, : i + 1] - 1 / (i + 1)))))
    gelu_inputs = [t[s.operands[0]] for s in t.steps if s.desc.role == "ffn_act"]
    bent = np.mean(np.abs(np.concatenate([g.ravel() for g in gelu_inputs])) > GELU_BEND)
    grads = [np.max(np.abs(t[u.operands[0]])) for u in (t.updates(p)[0] for p in t.params)]
    return spread >= ATTENTION_SPREAD and bent >= GELU_SHARE and min(grads) >= GRADIENT_FLOOR


# --- the roster ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Student:
    id: str
    name: str


SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
WINDOWS_RESERVED = {
    "CON",
    "PRN",
    "AUX",
    "NUL",
    *(f"{p}{k}" for p in ("COM", "LPT") for k in range(1, 10)),
}


def read_roster(path: Path) -> list[Student]:
    """Students of a UTF-8 CSV with columns id and name (others ignored), in roster order.
    Every problem is one ConfigError line naming the file and the row."""
    where = f"roster {str(path)!r}"
    text = read_text(path, where)
    try:
        rows = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise ConfigError(f"{where}: not a CSV file ({exc})") from None
    header = [h.strip().lower() for h in rows[0]] if rows else []
    if "id" not in header or "name" not in header:
        raise ConfigError(f"{where}: the first line must name the columns, with id and name")
    i_id, i_name = header.index("id"), header.index("name")
    students: list[Student] = []
    seen: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        cells = row + [""] * (len(header) - len(row))
        sid, name = cells[i_id].strip(), cells[i_name].strip()
        if not sid:
            raise ConfigError(f"{where}, line {line}: the id is empty")
        if not SAFE_ID.fullmatch(sid):
            raise ConfigError(
                f"{where}, line {line}: id {sid!r} cannot be a file name; use letters, digits, "
                "'.', '_' and '-' (at most 64, starting with a letter or digit)"
            )
        if sid.split(".")[0].upper() in WINDOWS_RESERVED:
            raise ConfigError(f"{where}, line {line}: id {sid!r} cannot be a file name on Windows")
        # S1 and s1 would be one file on a case-insensitive disk (macOS, Windows)
        if sid.casefold() in seen:
            first = seen[sid.casefold()]
            same = any(s.id == sid for s in students)
            alike = "" if same else " (the same letters in another case)"
            raise ConfigError(f"{where}, line {line}: id {sid!r} is already on line {first}{alike}")
        bad = next(
            (ch for ch in name if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp")), None
        )
        if bad is not None:
            raise ConfigError(
                f"{where}, line {line}: the name of {sid!r} has a control character "
                f"U+{ord(bad):04X}"
            )
        if len(name) > MAX_NAME:
            raise ConfigError(
                f"{where}, line {line}: a name of {len(name)} characters, at most {MAX_NAME}"
            )
        seen[sid.casefold()] = line
        students.append(Student(sid, name))
    if not students:
        raise ConfigError(f"{where}: no students")
    if len(students) > MAX_STUDENTS:
        raise ConfigError(f"{where}: {len(students)} students, at most {MAX_STUDENTS}")
    return students


MAX_NAME, MAX_STUDENTS = 80, 500


# --- variants -----------------------------------------------------------------------------
SEEDS = 100_000  # seeds a variant draws from
SENTENCES = 64  # at most this many sentences to choose from
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford's base 32: no I, L, O, U


@dataclass(frozen=True)
class Variant:
    number: int  # sentence index × SEEDS + seed
    fingerprint: int = 0  # of the settings it belongs to (see `fingerprint`)

    @property
    def seed(self) -> int:
        return self.number % SEEDS

    def sentence(self, c: Config) -> str:
        return sentences(c)[self.number // SEEDS]

    @property
    def code(self) -> str:
        """What a student's page shows: five base-32 digits of the variant, two of the
        settings' fingerprint and a check digit, as XXXX-XXXX."""
        body = _base32(self.number, 5) + _base32(self.fingerprint, 2)
        text = body + ALPHABET[_check(body)]
        return f"{text[:4]}-{text[4:]}"

    def config(self, c: Config) -> Config:
        return replace(c, seed=self.seed, sentence=self.sentence(c))


CODE_LENGTH = 8
FINGERPRINTS = 32**2


def _base32(n: int, width: int) -> str:
    digits = []
    for _ in range(width):
        n, d = divmod(n, 32)
        digits.append(ALPHABET[d])
    return "".join(reversed(digits))


def _number(digits: str) -> int:
    n = 0
    for ch in digits:
        n = n * 32 + ALPHABET.index(ch)
    return n


def _check(body: str) -> int:
    return sum((k + 1) * ALPHABET.index(ch) for k, ch in enumerate(body)) % 32


def fingerprint(c: Config, **settings: object) -> int:
    """A number for the settings a student's key depends on beyond their variant: the model
    (less its seed and sentence, which the variant sets) and, in `settings`, what the
    handouts ask (the exercises, the scaffold, the givens) and how they print it (digits).
    A code carries it, so a code used with other settings is refused, never keyed wrong."""
    model = {k: v for k, v in c.to_dict().items() if k not in ("seed", "sentence", "preset")}
    text = json.dumps({"model": model, **settings}, sort_keys=True)
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") % FINGERPRINTS


class OtherSettingsError(ConfigError):
    """A valid code of settings other than the ones given."""


def decode(code: str, c: Config, settings: int, what: str = "--key-for") -> Variant:
    """The variant of a code from a student's page, under the settings whose fingerprint is
    `settings`; a mistyped code, or one of other settings, is refused."""
    text = code.strip().upper().replace("-", "").translate(str.maketrans("OIL", "011"))
    if len(text) != CODE_LENGTH or any(ch not in ALPHABET for ch in text):
        raise ConfigError(
            f"{what} {code!r}: a variant code has {CODE_LENGTH} letters and digits, "
            "as on the handout's pages (XXXX-XXXX)"
        )
    if ALPHABET.index(text[-1]) != _check(text[:-1]):
        raise ConfigError(f"{what} {code!r}: not a variant code (its check digit is wrong)")
    number, marked = _number(text[:5]), _number(text[5:7])
    if marked != settings or number // SEEDS >= len(sentences(c)):
        raise OtherSettingsError(f"{what} {code!r}: a code of handouts made with other settings")
    return Variant(number, marked)


def sentences(c: Config) -> list[str]:
    """The sentences a variant may use: as many words as the model's own sentence, from the
    vocabulary, each word once where the vocabulary allows; the model's own sentence first."""
    words = [w for w in c.vocab if w not in SPECIALS]
    length = len(c.sentence.split())
    pool = (
        itertools.permutations(words, length)
        if length <= len(words)
        else itertools.product(words, repeat=length)
    )
    out = [c.sentence.strip()]
    for combo in pool:
        text = " ".join(combo)
        if text not in out:
            out.append(text)
        if len(out) == SENTENCES:
            break
    return out


Printable = Callable[[Config, Trace], None]  # raises UnprintableError, or returns


def assign(
    c: Config,
    students: list[Student],
    class_seed: int,
    printable: Printable | None = None,
    settings: int = 0,
) -> dict[str, Variant]:
    """Each student's variant: drawn from the class seed and the id, redrawn until it is
    lively (or, for a model that never is, valid), `printable` on the handout's paper, and
    nobody else has it: one student's unprintable draw must not stop the class's job.
    `settings`: the fingerprint the codes carry."""
    taken: set[int] = set()
    out: dict[str, Variant] = {}
    space = len(sentences(c)) * SEEDS
    for st in students:
        for attempt in range(MAX_TRIES):
            digest = hashlib.sha256(f"{class_seed}\x00{st.id}\x00{attempt}".encode()).digest()
            v = Variant(int.from_bytes(digest[:8], "big") % space, settings)
            strict = attempt < LIVELY_TRIES
            if v.number not in taken and usable(v.config(c), strict, printable):
                break
        else:
            raise ConfigError(
                f"no usable variant of these settings for student {st.id!r} in {MAX_TRIES} "
                "draws: use a smaller --init-scale (or --preset classroom)"
            )
        taken.add(v.number)
        out[st.id] = v
    return out


LIVELY_TRIES = 50  # draws that must be lively; after that any valid variant will do
MAX_TRIES = 200


def usable(c: Config, strict: bool, printable: Printable | None = None) -> bool:
    try:
        t = engine.run(c)
        engine.check_numbers(c, t)
        if printable is not None:
            printable(c, t)
    except (ConfigError, UnprintableError):  # invalid, or numbers the page cannot hold
        return False
    return lively(t) if strict else True
