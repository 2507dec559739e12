"""Numbers, names and text as LaTeX: the one place where anything becomes TeX source."""

from __future__ import annotations

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


def tex_escape(text: str) -> str:
    """The only way user text (sentence words, vocabulary, names) reaches LaTeX: escaped,
    and printed exactly as typed."""
    out = escape_latex(text)
    for a, b in _AS_TYPED:
        out = out.replace(a, b)
    for pair in _LIGATURES:
        while pair in out:
            out = out.replace(pair, f"{pair[0]}{{}}{pair[1]}")
    return out


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


# --- symbols: trace names → the workbook's notation -----------------------------------
_BASE = {
    "E_token": r"E_{\mathrm{token}}",
    "E_pos": r"E_{\mathrm{pos}}",
    "E_token[tokens]": r"E_{\mathrm{token}}[t]",
    "E_pos[0:T]": r"E_{\mathrm{pos}}[1{:}T]",
    "X": "X",
    "Q": "Q",
    "K": "K",
    "V": "V",
    "QK": r"(QK^{\top})",
    "scores": "S",
    "attn": "A",
    "head": "H",
    "W_Q": "W_Q",
    "W_K": "W_K",
    "W_V": "W_V",
    "W_O": "W_O",
    "W1": "W_1",
    "W2": "W_2",
    "b1": "b_1",
    "b2": "b_2",
    "W_lm": r"W_{\mathrm{lm}}",
    "gamma": r"\gamma",
    "beta": r"\beta",
    "concat": "C",
    "probs": "p",
    "p_target": r"p_{\mathrm{target}}",
    "loss": "L",
    "loss_per_position": r"\ell",
    "ln_mean": r"\mu",
    "ln_var": r"\sigma^2",
    "ln_hat": r"\hat{x}",
}


# Intermediate quantities of the fast-formula checks, named whole (with their d.).
_FULL = {
    "d.ln_hat_mean": r"\overline{\mathrm{d}\hat{x}}",
    "d.ln_hat_xhat": r"(\mathrm{d}\hat{x}{\odot}\hat{x})",
    "d.ln_hat_xhat_mean": r"\overline{\mathrm{d}\hat{x}{\odot}\hat{x}}",
    "d.residual_fast": r"\mathrm{d}\,\mathrm{residual}_{\mathrm{fast}}",
    "d.attn_attn": r"(\mathrm{d}A{\odot}A)",
    "d.attn_attn_sum": "s",
    "d.scores_fast": r"\mathrm{d}S_{\mathrm{fast}}",
}


def _text_name(base: str) -> str:
    escaped = base.replace("_", "\\_")
    return rf"\mathrm{{{escaped}}}"


def symbol(name: str) -> str:
    """LaTeX for a trace name: `Q.0` → Q^{(1)}, `d.W_Q.1` → dW_Q^{(2)}, `m.W1` → m[W_1]."""
    for prefix, fmt in (
        ("m_hat.", r"\hat{m}"),
        ("v_hat.", r"\hat{v}"),
        ("m.", "m"),
        ("v.", "v"),
        ("updated.", r"\theta'"),
    ):
        if name.startswith(prefix):
            return rf"{fmt}[{symbol(name[len(prefix) :])}]"
    grad = "d." if name.startswith("d.") else ""
    base, _, head = name[len(grad) :].partition(".")
    sup = f"^{{({int(head) + 1})}}" if head else ""
    if grad + base in _FULL:
        return _FULL[grad + base] + sup
    if grad:
        inner = symbol(name[2:])
        gap = r"\," if inner.startswith(r"\mathrm") else ""  # d ln_out, not dln_out
        return rf"\mathrm{{d}}{gap}{_grouped(inner)}"
    if base in ("X_Q", "X_K", "X_V"):  # one path's share of dX
        return rf"X_{{[{base[-1]}{sup}]}}"
    if base == "attn_out_ffn":  # attn_out's gradient through the FFN only
        return rf"{_text_name('attn_out')}_{{[\mathrm{{FFN}}]}}"
    return (_BASE.get(base) or _text_name(base)) + sup


def _grouped(sym: str) -> str:
    """Wrap a compound symbol so a prefix like d or a subscript binds to all of it."""
    simple = len(sym) == 1 or (sym.startswith("\\") and " " not in sym and "_" not in sym)
    return sym if simple else f"{{{sym}}}"


def element(name: str, idx: tuple[int | str, ...]) -> str:
    """An element with 1-based indices, (W_Q^{(1)})_{3,2}; str indices print as they are."""
    sym = symbol(name)
    if not idx:
        return sym
    sub = ",".join(i if isinstance(i, str) else str(i + 1) for i in idx)
    compound = "_" in sym or "[" in sym or sym.startswith(r"\mathrm{d}")
    return rf"({sym})_{{{sub}}}" if compound else rf"{sym}_{{{sub}}}"


def shape(s: tuple[int, ...]) -> str:
    """[5×16] for a matrix, [64] for a vector, [1] for a scalar."""
    return "[" + (r"\times".join(map(str, s)) if s else "1") + "]"
