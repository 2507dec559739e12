"""The notation table lists every symbol the book uses: every letter, Greek letter, accent
and named quantity in the math of the worked workbook (its prose, formulas, notes and
derivations; the worked lines only repeat those symbols with numbers) is in the table."""

from __future__ import annotations

import re

import pytest

from workbook import engine
from workbook.config import from_mapping
from workbook.render import Options, Worked

# Commands that are operators, functions or layout, not symbols.
LAYOUT = {
    "frac", "tfrac", "sqrt", "sum", "textstyle", "quad", "qquad", "bigl", "bigr", "Bigl",
    "Bigr", "cdot", "times", "Rightarrow", "to", "infty", "top", "dots", "cdots", "ldots",
    "mid", "le", "ge", "approx", "gg", "pm", "exp", "ln", "tanh", "max", "min", "enspace",
    "allowbreak", "displaystyle", "left", "right", "mathrm", "operatorname", "pi",
    "vphantom", "hphantom", "mkern", "not", "in", "ne", "neq", "equiv",
}  # fmt: skip
ACCENTS = ("hat", "tilde", "bar")  # \\overline (a row mean) is a symbol of its own
# Words set upright that are functions or labels, not quantities.
WORDS = {"d", "softmax", "sign", "GELU", "rows", "fast", "max", "token", "pos", "lm", "model"}
WORDS |= {"ff", "FFN", "LN1", "LN2", "ln1", "ln2", "f"}

MATH = re.compile(
    r"\$(.+?)\$|\\\[(.+?)\\\]|\\begin\{gather\*\}(.+?)\\end\{gather\*\}|\\eqn\{(.+?)\}\{", re.S
)


def strip_text(math: str) -> str:
    """Math without its \\text{…} parts (words, not symbols)."""
    out, k = [], 0
    for m in re.finditer(r"\\text(?:it|tt)?\{", math):
        if m.start() < k:
            continue
        out.append(math[k : m.start()])
        depth, k = 1, m.end()
        while depth and k < len(math):
            depth += {"{": 1, "}": -1}.get(math[k], 0)
            k += 1
    out.append(math[k:])
    return "".join(out)


def symbols(math: str) -> set[str]:
    """The symbols of a piece of math: letters, Greek letters (commands), accented letters
    (hat:x) and upright words (ln_out)."""
    math = strip_text(math).replace(r"\_", "_")
    found: set[str] = set()
    for m in re.finditer(r"\\(?:mathrm|operatorname)\{([^{}]*)\}", math):
        words = [w for w in re.split(r"[\\,\s]+", m.group(1)) if w]
        found |= {w for w in words if w not in WORDS}
    math = re.sub(r"\\(?:mathrm|operatorname)\{[^{}]*\}", " ", math)
    for accent in ACCENTS:  # \\hat{x} and \\hat x alike
        pattern = rf"\\{accent}(?:\{{\\?([A-Za-z]+)|\s+([A-Za-z]))"
        for m in re.finditer(pattern, math):
            found.add(f"{accent}:{m.group(1) or m.group(2)}")
        math = re.sub(pattern, " {", math)
    for m in re.finditer(r"\\([A-Za-z]+)", math):
        if m.group(1) not in LAYOUT:
            found.add(m.group(1))
    math = re.sub(r"\\[A-Za-z]+", " ", math)
    found |= set(re.findall(r"[A-Za-z]", math))
    return found


def notation_and_body(tex: str) -> tuple[str, str]:
    start = tex.index(r"\section*{Notation}")
    end = tex.index(r"\end{longtable}", start)
    body = tex[tex.index(r"\part{") :]
    body = re.sub(r"^\\ex\{.*$", "", body, flags=re.M)  # worked lines: numbers
    body = re.sub(r"\\begin\{(mtab|figblock|adamtable)\}.*?\\end\{\1\}", "", body, flags=re.S)
    return tex[start:end], body


@pytest.mark.parametrize(("model", "layers"), [("seed", 1), ("gpt2", 1)])
def test_the_notation_table_lists_every_symbol_the_book_uses(model: str, layers: int) -> None:
    c = from_mapping({"model": model, "layers": layers})
    tex = Worked(c, engine.run(c), Options(detail="results")).tex()
    table, body = notation_and_body(tex)
    listed = {s for m in MATH.finditer(table) for g in m.groups() if g for s in symbols(g)}
    used = {s for m in MATH.finditer(body) for g in m.groups() if g for s in symbols(g)}
    assert not used - listed, sorted(used - listed)


def test_the_symbol_reader() -> None:
    assert symbols(r"\hat{x}_{i,j} = \mathrm{ln\_out}_{i,j}\,\gamma_j") == {
        "hat:x", "i", "j", "ln_out", "gamma",
    }  # fmt: skip
    assert symbols(r"\mathrm{d}\,\mathrm{logits} \text{ for } i < T") == {"logits", "i", "T"}
