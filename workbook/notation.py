"""The workbook's notation: how a quantity's symbol is built from its base, layer and head.

The engine gives every parameter and every step its symbol when it records it, with these
rules, so a page never has to work a symbol out from a name. A head is a superscript in
parentheses, W_Q^{(1)}; a layer (in models whose names carry one) a superscript in brackets,
W_Q^{[2](1)}; a gradient is d before the symbol, \\mathrm{d}W_Q^{(1)}.
"""

from __future__ import annotations


def mark(layer: int | None, head: int | None) -> str:
    """The superscript for a layer and a head (0-based in, 1-based printed)."""
    text = (f"[{layer + 1}]" if layer is not None else "") + (
        f"({head + 1})" if head is not None else ""
    )
    return f"^{{{text}}}" if text else ""


def marked(base: str, layer: int | None, head: int | None) -> str:
    """base with its layer and head superscript; a base that has its own superscript
    (σ²) is grouped first, so the marks do not stack as a double superscript."""
    sup = mark(layer, head)
    if not sup:
        return base
    enclosed = base.startswith("(") and base.endswith(")")
    return (f"{{{base}}}" if "^" in base and not enclosed else base) + sup


def grouped(sym: str) -> str:
    """Wrap a compound symbol so a prefix like d or a subscript binds to all of it."""
    simple = len(sym) == 1 or (sym.startswith("\\") and " " not in sym and "_" not in sym)
    return sym if simple else f"{{{sym}}}"


def grad(sym: str) -> str:
    """d before a symbol: dW_Q^{(1)}, d ln_out (a thin space before a word)."""
    gap = r"\," if sym.startswith(r"\mathrm") else ""
    return rf"\mathrm{{d}}{gap}{grouped(sym)}"


def word(text: str) -> str:
    """A quantity named by a word: attn_out → upright, underscores escaped."""
    escaped = text.replace("_", "\\_")
    return rf"\mathrm{{{escaped}}}"


# AdamW's results for a parameter θ: m[θ], v[θ], m̂[θ], v̂[θ], θ'[θ].
ADAM_SYMBOLS = {
    "m": "m",
    "v": "v",
    "m_hat": r"\hat{m}",
    "v_hat": r"\hat{v}",
    "updated": r"\theta'",
}


def adam(kind: str, param: str) -> str:
    return rf"{ADAM_SYMBOLS[kind]}[{param}]"
