"""Numbers, names and text as LaTeX: the one place where anything becomes TeX source."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from pylatex.utils import escape_latex

from ..hand import config_const
from ..printed import Num

# After escaping: characters T1 would print as something else, and the pairs it would set
# as one glyph (<< as «, '' as ”, -- as –): each prints as typed.
_AS_TYPED = (
    (r"\^{}", r"\textasciicircum{}"),
    ("'", r"\textquotesingle{}"),
    ("`", r"\textasciigrave{}"),
    ('"', r"\textquotedbl{}"),
)
_LIGATURES = ("--", "<<", ">>", ",,")
WORD_SHOWN = 12  # characters of a word that a table's or figure's label shows


def tex_escape(text: str, breakable: bool = False) -> str:
    """The only way user text (sentence words, vocabulary, names) reaches LaTeX: escaped,
    and printed exactly as typed. `breakable`: a word longer than WORD_SHOWN characters may
    break between any two of them at the end of a line (a long word in running text)."""
    if breakable:
        return " ".join(
            r"\allowbreak{}".join(map(tex_escape, w)) if len(w) > WORD_SHOWN else tex_escape(w)
            for w in text.split(" ")
        )
    out = escape_latex(text)
    for a, b in _AS_TYPED:
        out = out.replace(a, b)
    for pair in _LIGATURES:
        while pair in out:
            out = out.replace(pair, f"{pair[0]}{{}}{pair[1]}")
    return out


def shown_words(words: Sequence[str]) -> list[str]:
    """Vocabulary words as labels of tables and figures: a word longer than WORD_SHOWN is
    cut to its first characters and an ellipsis (the contents' token list has it whole);
    cut words that would look alike also show their token id."""
    cut = [
        w if len(w) <= WORD_SHOWN else w[: WORD_SHOWN - 1] + "\N{HORIZONTAL ELLIPSIS}"
        for w in words
    ]
    alike = {c for c in cut if cut.count(c) > 1}
    return [f"{c} ({i})" if c in alike else c for i, c in enumerate(cut)]


@dataclass(frozen=True)
class Fmt:
    """Printed numbers (`Num`) as math-mode LaTeX, with a true minus sign.

    A number from a table with a power-of-ten factor is written cell·10^e where it stands
    alone; sums of such numbers state the factor once (see `steps`).
    """

    digits: int = 4

    def __call__(self, x: Num) -> str:
        if x.exp == 0 or not x.value.is_finite() or x.value == 0:
            return x.cell
        return rf"{x.cell}\cdot 10^{{{x.exp}}}"

    def paren(self, x: Num) -> str:
        return f"({self(x)})"

    def _term(self, x: Num, shared: bool) -> str:
        text = x.cell if shared else self(x)
        return f"({text})" if text.startswith("-") or (not shared and x.exp) else text

    def plus(self, xs: list[Num]) -> str:
        """a + b + c as printed; a power of ten all the terms share is stated once."""
        exps = {x.exp for x in xs}
        shared = len(exps) == 1 and next(iter(exps)) != 0
        body = " + ".join(self._term(x, shared) for x in xs)
        return rf"10^{{{xs[0].exp}}}\bigl[{body}\bigr]" if shared else body

    def products(self, pairs: list[tuple[Num, Num]]) -> str:
        """(a₁)(b₁) + (a₂)(b₂) + … as printed, the factor the terms share stated once."""
        exps = {a.exp + b.exp for a, b in pairs}
        shared = len(exps) == 1
        e = next(iter(exps)) if shared else 0
        if shared:
            body = " + ".join(f"({a.cell})({b.cell})" for a, b in pairs)
            return rf"10^{{{e}}}\bigl[{body}\bigr]" if e else body
        return " + ".join(f"{self.paren(a)}{self.paren(b)}" for a, b in pairs)

    @staticmethod
    def const(x: float | Decimal) -> str:
        """A constant exactly as it is used: 0.9, 10^{-8}, 2\times 10^{-5}, 0.35355339."""
        d = x if isinstance(x, Decimal) else config_const(x)
        if d == d.to_integral_value() and abs(d) < 10**6:
            return str(int(d))  # 0, not 0.0: a count or an indicator
        if Decimal("0.001") <= abs(d) < 10**6:
            return format(d, "f")
        mantissa, exp = f"{d:e}".split("e")
        power = f"10^{{{int(exp)}}}"
        return power if mantissa == "1" else rf"{mantissa}\times {power}"


def factor(exp: int) -> str:
    """A table's factor, for its heading: all entries × 10^e."""
    return rf"\times 10^{{{exp}}}" if exp else ""


def element(sym: str, idx: tuple[int | str, ...]) -> str:
    """An element of the quantity with symbol `sym`, with 1-based indices: (W_Q^{(1)})_{3,2};
    str indices print as they are."""
    if not idx:
        return sym
    sub = ",".join(i if isinstance(i, str) else str(i + 1) for i in idx)
    compound = "_" in sym or "[" in sym or sym.startswith(r"\mathrm{d}")
    return rf"({sym})_{{{sub}}}" if compound else rf"{sym}_{{{sub}}}"


def shape(s: tuple[int, ...]) -> str:
    """[5×16] for a matrix, [64] for a vector, [1] for a scalar."""
    return "[" + (r"\times".join(map(str, s)) if s else "1") + "]"


# The mathematics in plain-text names and sentences (a mistake's, say), as LaTeX.
_MATH_TEXT = (
    ("1/√d_k", r"1/\sqrt{d_k}"),
    ("√d_k", r"\sqrt{d_k}"),
    ("√v̂", r"\sqrt{\hat v}"),
    ("√σ²", r"\sqrt{\sigma^2}"),
    ("σ² + ε", r"\sigma^2 + \varepsilon"),
    ("σ²", r"\sigma^2"),
    ("x³", "x^3"),
    ("n − 1", "n - 1"),
    ("T − 1", "T - 1"),
    ("1 − β₁ᵗ", r"1 - \beta_1^t"),
    ("1 − β₂ᵗ", r"1 - \beta_2^t"),
    ("η·g", r"\eta\, g"),
    ("m̂", r"\hat m"),
    ("√", r"\surd"),
    ("ε", r"\varepsilon"),
    ("ϵ", r"\epsilon"),
    ("σ", r"\sigma"),
    ("θ", r"\theta"),
    ("η", r"\eta"),
    ("λ", r"\lambda"),
    ("−", "-"),
)


def unicode_tex(text: str) -> str:
    """Text with the few mathematical symbols our own sentences use (√d_k, σ², η·g …) as
    inline math, the rest escaped: never user text, which goes through tex_escape alone."""
    out, k = [], 0
    while k < len(text):
        hit = next(((a, b) for a, b in _MATH_TEXT if text.startswith(a, k)), None)
        if hit is None:
            out.append("'" if text[k] == "'" else escape_latex(text[k]))  # an apostrophe
            k += 1
        else:
            out.append(f"${hit[1]}$")
            k += len(hit[0])
    return "".join(out)
