"""Derivations: where each backward formula comes from, as data.

A `Derivation` goes from a forward formula to the backward formula in short numbered lines,
each naming the rule it uses, in the chapter's own symbols; then an `Instance`, one entry
worked with this step's printed numbers, equal to the entry the chapter prints. The worked
workbook prints them at the start of each backward chapter and of the optimizer chapter; the
exercises ask for them with their `key` lines left blank, and the answer key prints those.

A topic is derived in full in the first chapter that needs it; a later chapter (another
layer, another layer normalization) states its result in its own symbols and works its own
instance. Nothing here computes a number: values come from the printed chain (`Book`) or, for
the finite differences, from the engine's exact step.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from .. import engine, params
from ..config import Config
from ..hand import GELU_C, GELU_DC, config_const, dec, sig
from ..notation import grad
from ..printed import Book, Num, single
from ..trace import Chapter as ChapterInfo
from ..trace import Index, Step, Trace
from . import steps
from .fmt import Fmt, element

el = element


@dataclass(frozen=True)
class Line:
    """One line of a derivation: math, the rule it uses, and whether an exercise leaves it
    blank (`key`), showing only `given` (its left side) before the blank."""

    math: str
    rule: str
    key: bool = False
    given: str = ""


@dataclass(frozen=True)
class Instance:
    """One entry with this step's printed numbers: `lines` are worked lines (each re-checks
    on a calculator by the book's rules); the last one's value is entry `idx` of `step`."""

    text: str
    lines: tuple[str, ...]
    step: str
    idx: Index
    after: str = ""


@dataclass(frozen=True)
class Derivation:
    topic: str
    title: str
    lead: str
    lines: tuple[Line, ...]
    close: str = ""
    instance: Instance | None = None
    result: tuple[str, ...] = field(default=())  # what a later chapter restates

    @property
    def keys(self) -> list[int]:
        """The numbers (1-based) of the lines an exercise leaves blank."""
        return [k + 1 for k, line in enumerate(self.lines) if line.key]


# The topics each kind of chapter (its intro template) derives, in order.
TOPICS = {
    "loss_grad": ("recipe", "softmax", "cross_entropy"),
    "lm_grad": ("products",),
    "ln_ffn_back": ("layernorm", "gelu", "residual"),
    "ffn_back": ("gelu",),
    "attn_back": ("attention",),
    "embed_back": ("embedding",),
    "adamw": ("adamw",),
}
TITLES = {
    "recipe": "The recipe: local derivative times upstream gradient",
    "softmax": "The softmax Jacobian, by the quotient rule",
    "cross_entropy": "Softmax with cross-entropy: the collapse",
    "products": "Matrix products, entry by entry",
    "layernorm": "Layer normalization: its Jacobian and the fast formula",
    "gelu": "The derivative of GELU",
    "residual": "Residual connections: paths add",
    "attention": "Back through attention: softmax, mask and scaling",
    "embedding": "Embeddings: a lookup's gradient is a scatter-add",
    "adamw": "AdamW: moments, bias correction, the first step",
}


def squared(sym: str) -> str:
    """sym², in parentheses when sym has a superscript of its own (a layer's mark)."""
    return f"({sym})^2" if "^" in sym else f"{sym}^2"


def topics(info: ChapterInfo) -> tuple[str, ...]:
    """The derivations that open a chapter."""
    if info.intro == "ln_back":
        return ("layernorm", "residual") if info.symbols.get("shared") else ("layernorm",)
    return TOPICS.get(info.intro, ())


def first_chapters(t: Trace) -> dict[str, int]:
    """Each topic's first chapter: the one that derives it in full."""
    out: dict[str, int] = {}
    for info in t.chapters:
        for topic in topics(info):
            out.setdefault(topic, info.number)
    return out


def exercises(t: Trace) -> list[tuple[int, str]]:
    """(chapter, topic) of every derivation an exercise asks for: each derived in full."""
    first = first_chapters(t)
    return [(ch.number, x) for ch in t.chapters for x in topics(ch) if first[x] == ch.number]


# --- the finite differences -----------------------------------------------------------------
NUDGE = Decimal("0.0001")  # Δ: small enough for the slope, large enough for 13 digits of L
LOSS_DIGITS = 13  # of the two losses, as printed
SLOPE_DIGITS = 7  # of the centred difference and of the exact gradient


@dataclass(frozen=True)
class Nudge:
    """One parameter entry nudged by ±Δ: the two losses of the exact step, as printed, their
    centred difference (from those printed losses), the exact gradient and the printed one."""

    param: str
    grad: str
    idx: Index
    plus: Decimal
    minus: Decimal
    slope: Decimal
    exact: Decimal
    printed: Num

    @property
    def agree(self) -> int:
        """Significant digits the centred difference shares with the exact gradient."""
        return agreeing_digits(self.slope, self.exact)


def agreeing_digits(a: Decimal, b: Decimal) -> int:
    """The most significant digits to which a and b round alike (at most 12)."""
    return max((d for d in range(1, 13) if sig(a, d) == sig(b, d)), default=0)


def nudged(t: Trace) -> list[tuple[str, str]]:
    """One parameter at each depth, as (parameter, its gradient): the output weights, the
    first block's expansion weights (the last recorded), the token embeddings."""
    of = {s.operands[0]: s.desc.of for s in t.steps if s.desc.role == "m"}
    picks = []
    for role, last in (("d.W_lm", False), ("d.W1", True), ("d.E_token", False)):
        found = [s.name for s in t.steps if s.desc.role == role]
        grad_name = found[-1] if last else found[0]
        picks.append((of[grad_name], grad_name))
    return picks


def finite_differences(c: Config, t: Trace, book: Book) -> list[Nudge]:
    """Each nudged parameter's entry with the largest gradient, by ±Δ, in the exact step.
    The engine knows the parameters by its own names, in the order the trace lists them."""
    engine_name = dict(zip(t.params, params.names(c), strict=True))
    initial = {engine_name[n]: np.asarray(t[n]) for n in t.params}
    out = []
    for p, grad_name in nudged(t):
        g = np.asarray(t[grad_name])
        idx = tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(g)), g.shape))
        losses = []
        for sign in (1, -1):
            moved = initial[engine_name[p]].copy()
            moved[idx] += sign * float(NUDGE)
            loss = engine.loss(c, initial | {engine_name[p]: moved})
            losses.append(sig(dec(loss), LOSS_DIGITS))
        slope = sig((losses[0] - losses[1]) / (2 * NUDGE), SLOPE_DIGITS)
        exact = sig(dec(float(g[idx])), SLOPE_DIGITS)
        printed = book.num(grad_name, idx)
        out.append(Nudge(p, grad_name, idx, losses[0], losses[1], slope, exact, printed))
    return out


# --- the derivations ------------------------------------------------------------------------
class Derivations:
    """The derivations of a trace's chapters, in its symbols and with its printed numbers."""

    def __init__(self, c: Config, t: Trace, book: Book, f: Fmt) -> None:
        self.c, self.t, self.book, self.f = c, t, book, f
        self.first = first_chapters(t)

    def chapter(self, info: ChapterInfo) -> Iterator[tuple[Derivation, bool]]:
        """Each derivation of a chapter, and whether it is derived here in full (else a
        later chapter restates the result of the first)."""
        for topic in topics(info):
            yield getattr(self, topic)(info), self.first[topic] == info.number

    def get(self, topic: str) -> Derivation:
        """A topic's derivation as its first chapter derives it."""
        info = next(ch for ch in self.t.chapters if ch.number == self.first[topic])
        return getattr(self, topic)(info)

    # --- helpers -------------------------------------------------------------------------
    def step(self, info: ChapterInfo, role: str) -> Step:
        return next(s for s in self.t.chapter(info.number) if s.desc.role == role)

    def sym(self, name: str) -> str:
        return self.t.symbol(name)

    def work(self, name: str, idx: Index) -> str:
        return steps.work(self.t.step(name), self.book, idx, self.f)

    def entry(self, name: str, text: str, idx: Index = (0, 0)) -> Instance:
        """An instance of one worked line: entry `idx` of step `name`, as the chapter works it."""
        return Instance(text, (self.work(name, idx),), name, idx)

    def num(self, value: Decimal) -> Num:
        return single(value, self.book.digits)

    # --- the loss ------------------------------------------------------------------------
    def recipe(self, info: ChapterInfo) -> Derivation:
        lines = (
            Line(
                r"\mathrm{d}M_a = \partial L/\partial M_a \text{ for every entry } a "
                r"\text{ of } M",
                r"definition: so $\mathrm{d}M$ has the shape of $M$",
            ),
            Line(
                r"N = f(M):\quad \mathrm{d}M_a = \sum_b \mathrm{d}N_b\,\partial N_b/\partial M_a",
                "chain rule: upstream gradient times local derivative, over every entry "
                "that $M_a$ touches",
                key=True,
                given=r"N = f(M):\quad \mathrm{d}M_a =",
            ),
            Line(
                r"M \text{ feeds } N \text{ and } P:\quad "
                r"\mathrm{d}M = \mathrm{d}M_{[N]} + \mathrm{d}M_{[P]}",
                "multivariate chain rule: paths add",
                key=True,
                given=r"M \text{ feeds } N \text{ and } P:\quad \mathrm{d}M =",
            ),
            Line(
                r"L = \tfrac{1}{T-1}\textstyle\sum_{i=1}^{T-1} \ell_i \ \Rightarrow\ "
                r"\mathrm{d}\ell_i = \partial L/\partial \ell_i = 1/(T-1) \text{ for } i < T",
                "derivative of a sum",
            ),
        )
        return Derivation(
            "recipe",
            TITLES["recipe"],
            "Every gradient in this part is built by three rules. Here "
            r"$M$, $N$ and $P$ stand for any quantities, $M_a$ for any entry of $M$.",
            lines,
            close=(
                "So the backward pass runs the forward pass in reverse: each step multiplies "
                "the gradient it receives by its own local derivative, and where a quantity "
                rf"was used twice its gradients are added. Here $T - 1 = {self.c.T - 1}$: the "
                "last position predicts nothing, so it has no loss of its own."
            ),
        )

    def softmax(self, info: ChapterInfo) -> Derivation:
        z, p = (el(r"\mathrm{logits}", ("i", k)) for k in "jk"), el("p", ("i", "j"))
        zj, zk = z
        lines = (
            Line(
                rf"{p} = \exp({zj})/Z_i, \quad Z_i = \textstyle\sum_k \exp({zk})",
                "definition of the softmax of row $i$",
            ),
            Line(rf"\partial Z_i/\partial {zk} = \exp({zk})", "derivative of exp"),
            Line(
                rf"\partial {p}/\partial {zk} = \bigl(\delta_{{jk}} \exp({zj})\, Z_i - "
                rf"\exp({zj}) \exp({zk})\bigr)/Z_i^2",
                "quotient rule",
                key=True,
                given=rf"\partial {p}/\partial {zk} =",
            ),
            Line(
                rf"(J_i)_{{j,k}} = \partial {p}/\partial {zk} = "
                rf"{p}\,(\delta_{{jk}} - {el('p', ('i', 'k'))})",
                rf"$\exp({zj})/Z_i = {p}$",
                key=True,
                given=rf"(J_i)_{{j,k}} = \partial {p}/\partial {zk} =",
            ),
            Line(
                rf"\textstyle\sum_j (J_i)_{{j,k}} = {el('p', ('i', 'k'))} - "
                rf"{el('p', ('i', 'k'))}\sum_j {p} = 0",
                "the probabilities of a row add up to 1",
            ),
        )
        return Derivation(
            "softmax",
            TITLES["softmax"],
            r"A softmax couples its whole row: each $p_{i,j}$ depends on every logit of row "
            r"$i$. Its Jacobian holds all those derivatives.",
            lines,
            close=(
                "The last line says that each column of the Jacobian adds up to 0: moving one "
                "logit moves probability from some words to others, and the total stays 1. "
                "The attention weights are a softmax of the scores, with the same Jacobian."
            ),
            result=(lines[3].math,),
        )

    def cross_entropy(self, info: ChapterInfo) -> Derivation:
        dp, dz = grad("p"), grad(r"\mathrm{logits}")
        p_ij, p_ik, y_ij, y_ik = (el(s, ("i", k)) for s in ("p", "y") for k in "jk")
        lines = (
            Line(
                r"\ell_i = -\ln p_{i,c}, \quad c = t_{i+1} + 1",
                "definition: the correct next token's column",
            ),
            Line(
                rf"{el(dp, ('i', 'j'))} = -{y_ij}/\bigl((T-1)\,{p_ij}\bigr)",
                r"chain rule: $\mathrm{d}\ln p/\mathrm{d}p = 1/p$, $\mathrm{d}\ell_i = 1/(T-1)$",
            ),
            Line(
                rf"{el(dz, ('i', 'k'))} = \textstyle\sum_j {el(dp, ('i', 'j'))}\,"
                rf"{p_ij}\,(\delta_{{jk}} - {p_ik})",
                "chain rule through the softmax Jacobian",
            ),
            Line(
                rf"= -\tfrac{{1}}{{T-1}}\textstyle\sum_j {y_ij}\,(\delta_{{jk}} - {p_ik})",
                rf"${p_ij}$ cancels",
                key=True,
                given="=",
            ),
            Line(
                rf"= ({p_ik} - {y_ik})/(T-1) \text{{ for }} i < T, \quad "
                rf"{el(dz, ('T', 'k'))} = 0",
                r"sum over $j$: only $j = c$ has $y = 1$",
                key=True,
                given="=",
            ),
        )
        return Derivation(
            "cross_entropy",
            TITLES["cross_entropy"],
            r"The loss reads only the probability of the correct next token, so "
            r"$\mathrm{d}p$ has one entry per row that is not zero; the softmax Jacobian then "
            r"spreads it over the row.",
            lines,
            close=(
                "The probabilities cancel, and the long route through the Jacobian collapses "
                "into one subtraction."
            ),
            instance=self.cross_entropy_instance(),
        )

    def cross_entropy_instance(self) -> Instance:
        """Row 1 through the Jacobian route, beside the collapsed formula's entries."""
        book, f = self.book, self.f
        c = self.c.tokens[1] if len(self.c.tokens) > 1 else 0
        k = 0 if c != 0 else 1
        dp_name, dz_name, p_name = (self.t.find(r).name for r in ("d.probs", "d.logits", "probs"))
        dp_sym, dz_sym = self.sym(dp_name), self.sym(dz_name)
        dp = book.num(dp_name, (0, c))
        lines = [self.work(dp_name, (0, c))]
        agree = True
        for j in (c, k):
            delta = "1" if j == c else "0"
            pc, pj = book.num(p_name, (0, c)), book.num(p_name, (0, j))
            value = book.r(dp.value * pc.value * (Decimal(int(j == c)) - pj.value))
            shown = self.num(value)
            agree &= shown.value == book.num(dz_name, (0, j)).value
            lines.append(
                rf"{el(dz_sym, (0, j))} = {el(dp_sym, (0, c))}\,{el('p', (0, c))}\,"
                rf"({delta} - {el('p', (0, j))}) = {f.paren(dp)}\,{f.paren(pc)}\,"
                rf"({delta} - {f.paren(pj)}) = {f(shown)}"
            )
        lines += [self.work(dz_name, (0, j)) for j in (c, k)]
        same = (
            "Both routes give the same digits."
            if agree
            else "The two routes agree to within a unit in the last digit: the Jacobian "
            r"route rounds $\mathrm{d}p$ on the way."
        )
        return Instance(
            rf"Row 1, whose next token is column $c = {c + 1}$: first the Jacobian route (only "
            r"$j = c$ is left in the sum), then the collapsed formula, as this chapter "
            "prints it.",
            tuple(lines),
            dz_name,
            (0, k),
            after=same,
        )

    # --- products ------------------------------------------------------------------------
    def products(self, info: ChapterInfo) -> Derivation:
        x, w, y = info.symbols["x"], r"W_{\mathrm{lm}}", r"\mathrm{logits}"
        dy, dw, dx = grad(y), grad(w), grad(x)
        grad_w = self.step(info, "d.W_lm")
        qkv = next(ch for ch in self.t.chapters if ch.intro == "qkv")
        xq = qkv.symbols["x"]
        b1 = self.t.step(next(s.name for s in self.t.steps if s.desc.role == "d.b1"))
        hidden = self.t.symbol(b1.operands[0])
        lines = (
            Line(
                rf"{el(y, ('i', 'v'))} = \textstyle\sum_k {el(x, ('i', 'k'))}\,{el(w, ('v', 'k'))}",
                "definition of the product with the transpose",
            ),
            Line(
                rf"\partial {el(y, ('i', 'v'))}/\partial {el(w, ('v', 'k'))} = "
                rf"{el(x, ('i', 'k'))}, \quad \partial {el(y, ('i', 'v'))}/"
                rf"\partial {el(x, ('i', 'k'))} = {el(w, ('v', 'k'))}",
                "one term of the sum holds each entry",
            ),
            Line(
                rf"{el(dw, ('v', 'k'))} = \textstyle\sum_i {el(dy, ('i', 'v'))}\,"
                rf"{el(x, ('i', 'k'))}, \text{{ so }} {dw} = {steps.transposed(dy)}\,{x}",
                r"chain rule; every position uses the weight: paths add over $i$",
                key=True,
                given=rf"{el(dw, ('v', 'k'))} =",
            ),
            Line(
                rf"{el(dx, ('i', 'k'))} = \textstyle\sum_v {el(dy, ('i', 'v'))}\,"
                rf"{el(w, ('v', 'k'))}, \text{{ so }} {dx} = {dy}\,{w}",
                r"chain rule; an input feeds every logit of its row: paths add over $v$",
                key=True,
                given=rf"{el(dx, ('i', 'k'))} =",
            ),
            Line(
                rf"Q = {xq}\,W_Q:\quad \mathrm{{d}}W_Q = {steps.transposed(xq)}\,\mathrm{{d}}Q, "
                rf"\quad {grad(xq)}_{{[Q]}} = \mathrm{{d}}Q\,W_Q^{{\top}}",
                "the same two steps, the weight not transposed",
            ),
            Line(
                rf"{el(hidden, ('i', 'j'))} = \dots + (b_1)_j:\quad (\mathrm{{d}}b_1)_j = "
                rf"\textstyle\sum_i {el(grad(hidden), ('i', 'j'))}",
                "the bias is added to every row, with derivative 1: a column sum",
            ),
        )
        where = info.number
        return Derivation(
            "products",
            TITLES["products"],
            "A matrix product hides a sum. Written entry by entry, each entry of the logits "
            "is a plain sum of products, and each weight or input appears in some of those "
            "sums, once each: the chain rule then adds over those sums.",
            lines,
            close=(
                "The shapes check the result: a gradient has its quantity's shape, and only "
                rf"one order of the factors gives it, here ${dw}$ "
                rf"${steps.shape(grad_w.shape)}$. The queries, keys and values (chapter "
                f"{self.first.get('attention', where)}) use the form without the transpose, "
                "and "
                "the feed-forward network the transposed one with a bias."
            ),
            instance=self.entry(
                grad_w.name, "The first entry of the weight gradient, with this chapter's numbers:"
            ),
        )

    # --- layer normalization --------------------------------------------------------------
    def layernorm(self, info: ChapterInfo) -> Derivation:
        s = info.symbols
        x, mu, var, sg, hat = s["x"], s["mu"], s["var"], s["sigma"], s["hat"]
        out, gamma, beta = s["out"], s["gamma"], s["beta"]
        xk, xj = (el(x, (k,)) for k in "kj")
        hj, hk = el(hat, ("j",)), el(hat, ("k",))
        dh = grad(hat)
        lines = (
            Line(
                rf"{mu} = \tfrac1n\textstyle\sum_k {xk}, \ \ "
                rf"{var} = \tfrac1n\sum_k ({xk} - {mu})^2, \ \ "
                rf"{sg} = \sqrt{{{var} + \varepsilon}}, \ \ {hj} = ({xj} - {mu})/{sg}",
                "definitions (one row; population variance)",
            ),
            Line(rf"\partial {mu}/\partial {xk} = 1/n", "derivative of a sum"),
            Line(
                rf"\partial {var}/\partial {xk} = \tfrac2n\textstyle\sum_j ({xj} - {mu})"
                rf"(\delta_{{jk}} - \tfrac1n) = \tfrac2n ({xk} - {mu})",
                "chain rule; the deviations add up to 0",
            ),
            Line(
                rf"\partial {sg}/\partial {xk} = \frac{{1}}{{2{sg}}}\,"
                rf"\partial {var}/\partial {xk} = {hk}/n",
                "chain rule, derivative of the square root",
                key=True,
                given=rf"\partial {sg}/\partial {xk} =",
            ),
            Line(
                rf"\partial {hj}/\partial {xk} = \frac{{(\delta_{{jk}} - 1/n)\,{sg} - "
                rf"({xj} - {mu})\,{hk}/n}}{{{squared(sg)}}}",
                "quotient rule",
                key=True,
                given=rf"\partial {hj}/\partial {xk} =",
            ),
            Line(
                rf"(J)_{{j,k}} = \bigl(\delta_{{jk}} - 1/n - {hj}\,{hk}/n\bigr)/{sg}",
                rf"${xj} - {mu} = {sg}\,{hj}$",
            ),
            Line(
                rf"{el(grad(x), ('k',))} = \textstyle\sum_j {el(dh, ('j',))}\,(J)_{{j,k}} = "
                rf"\bigl({el(dh, ('k',))} - \tfrac1n\sum_j {el(dh, ('j',))} - {hk}\,"
                rf"\tfrac1n\sum_j {el(dh, ('j',))}\,{hj}\bigr)/{sg}",
                "chain rule; multiply out the three terms",
                key=True,
                given=rf"{el(grad(x), ('k',))} = \textstyle\sum_j {el(dh, ('j',))}\,(J)_{{j,k}} =",
            ),
            Line(
                rf"{{{grad(x)}}}_{{\mathrm{{fast}}}} = \bigl(\mathrm{{d}}{hat} - "
                rf"\overline{{\mathrm{{d}}{hat}}} - {hat} \odot \overline{{\mathrm{{d}}{hat}"
                rf"\odot {hat}}}\bigr)/{sg}",
                "the same, row by row: the fast formula",
            ),
            Line(
                rf"{el(out, ('i', 'j'))} = {el(gamma, ('j',))}\,{el(hat, ('i', 'j'))} + "
                rf"{el(beta, ('j',))} \Rightarrow {el(grad(gamma), ('j',))} = "
                rf"\textstyle\sum_i {el(grad(out), ('i', 'j'))}\,{el(hat, ('i', 'j'))}, \ \ "
                rf"{el(grad(beta), ('j',))} = \sum_i {el(grad(out), ('i', 'j'))}",
                rf"every row uses ${gamma}$ and ${beta}$: paths add over $i$",
            ),
        )
        jac = self.step(info, "d.ln_in")
        i = steps.jacobian_row(jac, self.book)
        entry = steps.jacobian_entries(jac, self.book, self.f)[-1]
        fast = self.step(info, "d.ln_in_fast")
        final = info.intro == "ln_back" and not info.symbols.get("shared")
        around = (
            " Nothing goes around the final layer normalization, so this is its input's "
            "whole gradient."
            if final
            else ""
        )
        return Derivation(
            "layernorm",
            TITLES["layernorm"],
            rf"One row at a time (the row index $i$ is left out), with $n = {self.c.d_model}$. "
            rf"Each ${hj}$ depends on every ${xk}$ of its row three ways: directly, through "
            rf"${mu}$ and through ${sg}$.",
            lines,
            close=(
                r"Line 6 is the Jacobian this chapter multiplies by; line 8 computes the same "
                r"product without forming it, and the chapter does both." + around
            ),
            instance=Instance(
                rf"One entry of $J_{{{i + 1}}}$ from row {i + 1}'s printed ${hat}$ and "
                rf"${sg}$, and the fast formula's first entry of that row:",
                (entry, self.work(fast.name, (i, 0))),
                fast.name,
                (i, 0),
            ),
            result=(lines[5].math, lines[7].math),
        )

    def gelu(self, info: ChapterInfo) -> Derivation:
        step = self.step(info, "d.ffn_hidden")
        x, dact = self.sym(step.operands[1]), self.sym(step.operands[0])
        lines = (
            Line(
                r"\mathrm{GELU}(x) = \tfrac12 x\,(1 + \tanh u), \quad u = \sqrt{2/\pi}\,"
                rf"(x + {self.f.const(GELU_C)}\,x^3)",
                "definition (tanh form)",
            ),
            Line(
                rf"\mathrm{{d}}u/\mathrm{{d}}x = \sqrt{{2/\pi}}\,(1 + "
                rf"{self.f.const(GELU_DC)}\,x^2)",
                "power rule",
            ),
            Line(r"\mathrm{d}\tanh u/\mathrm{d}u = 1 - \tanh^2 u", "derivative of tanh"),
            Line(
                r"\mathrm{GELU}'(x) = \tfrac12(1 + \tanh u) + \tfrac12 x\,(1 - \tanh^2 u)"
                rf"\sqrt{{2/\pi}}\,(1 + {self.f.const(GELU_DC)}\,x^2)",
                r"product rule, then the chain rule for $\tanh u$",
                key=True,
                given=r"\mathrm{GELU}'(x) =",
            ),
            Line(
                rf"{el(grad(x), ('i', 'j'))} = {el(dact, ('i', 'j'))}\,"
                rf"\mathrm{{GELU}}'({el(x, ('i', 'j'))})",
                "chain rule, entry by entry",
            ),
        )
        return Derivation(
            "gelu",
            TITLES["gelu"],
            "GELU acts on each entry on its own, so its Jacobian is diagonal and the chain rule "
            "is one product per entry.",
            lines,
            close=(
                r"The $u$ and $\tanh u$ are those the forward pass wrote, so the derivative "
                "costs two products more."
            ),
            result=(lines[3].math, lines[4].math),
            instance=self.entry(step.name, "The first entry, with this chapter's numbers:"),
        )

    def residual(self, info: ChapterInfo) -> Derivation:
        if info.intro == "ln_ffn_back":
            role = "d.attn_out"
            lines = (
                Line(
                    r"\mathrm{residual} = \mathrm{attn\_out} + \mathrm{ffn\_out}",
                    "definition",
                ),
                Line(
                    r"\partial\,\mathrm{residual}_{i,j}/\partial\,\mathrm{ffn\_out}_{i,j} = 1 "
                    r"\Rightarrow \mathrm{d}\,\mathrm{ffn\_out} = \mathrm{d}\,\mathrm{residual}",
                    "sum rule: a sum passes its gradient on unchanged",
                ),
                Line(
                    r"\mathrm{d}\,\mathrm{attn\_out} = \mathrm{d}\,\mathrm{residual} + "
                    r"\mathrm{d}\,\mathrm{attn\_out}_{[\mathrm{FFN}]}",
                    r"$\mathrm{attn\_out}$ feeds the residual and the FFN: paths add",
                    key=True,
                    given=r"\mathrm{d}\,\mathrm{attn\_out} =",
                ),
            )
        else:
            role = self.step_role(info)
            lines = (
                Line(
                    r"\mathrm{residual}_2 = \mathrm{residual}_1 + \mathrm{ffn\_out}, \quad "
                    r"\mathrm{residual}_1 = X + \mathrm{attn\_out}",
                    r"definitions (one block; $X$ is its input)",
                ),
                Line(
                    r"\mathrm{d}\,\mathrm{ffn\_out} = \mathrm{d}\,\mathrm{residual}_2, \quad "
                    r"\mathrm{d}\,\mathrm{attn\_out} = \mathrm{d}\,\mathrm{residual}_1",
                    "sum rule: a sum passes its gradient on unchanged",
                ),
                Line(
                    r"\mathrm{d}\,\mathrm{residual}_1 = \mathrm{d}\,\mathrm{residual}_2 + "
                    r"\mathrm{d}\,\mathrm{residual}_{1[\mathrm{LN2}]}",
                    r"$\mathrm{residual}_1$ feeds $\mathrm{residual}_2$ and LN2: paths add",
                    key=True,
                    given=r"\mathrm{d}\,\mathrm{residual}_1 =",
                ),
                Line(
                    r"\mathrm{d}X = \mathrm{d}\,\mathrm{residual}_1 + \mathrm{d}X_{[\mathrm{LN1}]}",
                    r"$X$ feeds $\mathrm{residual}_1$ and LN1: paths add",
                    key=True,
                    given=r"\mathrm{d}X =",
                ),
            )
        step = self.step(info, role)
        return Derivation(
            "residual",
            TITLES["residual"],
            "A residual connection adds a quantity back after a sub-layer. A sum has "
            "derivative 1 in each of its terms, so its gradient goes to both, unchanged; the "
            "quantity it adds back is then used twice, and its gradient is the sum of the two.",
            lines,
            close=(
                "This is why the gradient reaches the early layers undiminished: the residual "
                "path hands it on without multiplying it by anything."
                if info.intro != "ln_ffn_back"
                else "In this block the attention has no residual around it; only its output "
                "is used twice."
            ),
            instance=self.entry(
                step.name, "The first entry of the sum, with this chapter's numbers:"
            ),
            result=tuple(line.math for line in lines if line.key),
        )

    def step_role(self, info: ChapterInfo) -> str:
        """The gradient a GPT-2 layer normalization chapter adds its two paths into."""
        roles = [s.desc.role for s in self.t.chapter(info.number)]
        return "d.residual1" if "d.residual1" in roles else "d.block_in"

    # --- attention -----------------------------------------------------------------------
    def attention(self, info: ChapterInfo) -> Derivation:
        x = info.symbols["x"]
        A, dA, dS = "A_{i,j}", r"\mathrm{d}A_{i,j}", r"\mathrm{d}S_{i,k}"
        out = r"\mathrm{attn\_out}"
        lines = (
            Line(
                rf"{out} = C\,W_O^{{\top}} \Rightarrow \mathrm{{d}}W_O = "
                rf"{steps.transposed(grad(out))}\,C, \quad \mathrm{{d}}C = {grad(out)}\,W_O",
                f"matrix products (chapter {self.first['products']}); "
                r"$\mathrm{d}H^{(h)}$ is head $h$'s columns of $\mathrm{d}C$",
            ),
            Line(
                r"H = A\,V \Rightarrow \mathrm{d}A = \mathrm{d}H\,V^{\top}, \quad "
                r"\mathrm{d}V = A^{\top}\mathrm{d}H",
                "matrix products, the weight not transposed",
            ),
            Line(
                rf"{dS} = \textstyle\sum_j {dA}\,{A}\,(\delta_{{jk}} - A_{{i,k}})",
                f"chain rule through the softmax Jacobian (chapter {self.first['softmax']})",
            ),
            Line(
                rf"= A_{{i,k}}\bigl(\mathrm{{d}}A_{{i,k}} - r_i\bigr), \quad r_i = "
                rf"\textstyle\sum_j {dA}\,{A}",
                r"only $j = k$ keeps $\delta_{jk}$; the rest is one sum per row",
                key=True,
                given="=",
            ),
            Line(
                rf"\textstyle\sum_k {dS} = \sum_k A_{{i,k}}\,\mathrm{{d}}A_{{i,k}} - r_i "
                r"\sum_k A_{i,k} = r_i - r_i = 0",
                "the weights of a row add up to 1",
                key=True,
                given=rf"\textstyle\sum_k {dS} =",
            ),
            Line(
                r"S_{i,k} = -\infty \text{ for } k > i \Rightarrow A_{i,k} = 0,\ "
                r"\mathrm{d}S_{i,k} = 0",
                "a masked score is a constant: its derivative is 0",
            ),
            Line(
                r"S = QK^{\top}/\sqrt{d_k} \Rightarrow "
                r"\mathrm{d}(QK^{\top}) = \mathrm{d}S/\sqrt{d_k}",
                "chain rule: the same constant factor on the way back",
                key=True,
                given=r"S = QK^{\top}/\sqrt{d_k} \Rightarrow \mathrm{d}(QK^{\top}) =",
            ),
            Line(
                r"\mathrm{d}Q = \mathrm{d}(QK^{\top})\,K, \quad "
                r"\mathrm{d}K = \mathrm{d}(QK^{\top})^{\top} Q",
                "matrix products, with the transpose",
            ),
            Line(
                rf"\mathrm{{d}}W_Q = {steps.transposed(x)}\,\mathrm{{d}}Q, \quad "
                rf"{grad(x)} = \textstyle\sum_h \bigl(\mathrm{{d}}Q\,W_Q^{{\top}} + "
                r"\mathrm{d}K\,W_K^{\top} + \mathrm{d}V\,W_V^{\top}\bigr)^{(h)}",
                "matrix products; the input feeds every head three ways: paths add",
            ),
        )
        fast = self.step(info, "d.scores_fast")
        jac = self.t.step(fast.checks)
        i = steps.jacobian_row(jac, self.book)
        row = self.book.shown(jac.name)[i]
        total = self.num(sum(row, Decimal(0)))
        head = self.sym(jac.name)
        return Derivation(
            "attention",
            TITLES["attention"],
            r"Per head, and row by row ($A$ and $S$ of one head; the head mark is left out). "
            "The softmax is the one of the loss, with the scores in place of the logits.",
            lines,
            close=(
                "The first row of every head has a single unmasked weight, "
                r"$A_{1,1} = 1$, whatever $S_{1,1}$: so $\mathrm{d}S_{1,1} = 0$, and the first "
                "query gets no gradient. The last position's row is zero too, as it predicts "
                "nothing."
            ),
            instance=Instance(
                rf"Row {i + 1} of head 1 by the fast formula (line 4), which this chapter "
                f"prints as a check; the {len(row)} printed entries of that row of ${head}$ "
                rf"add up to ${self.f(total)}$, zero up to the rounding of each entry "
                "(line 5).",
                (self.work(fast.name, (i, 0)),),
                fast.name,
                (i, 0),
            ),
            result=(lines[3].math, lines[4].math, lines[6].math),
        )

    # --- embeddings ----------------------------------------------------------------------
    def embedding(self, info: ChapterInfo) -> Derivation:
        c = self.c
        last = c.T
        lines = (
            Line(
                r"X_{i,:} = (E_{\mathrm{token}})_{t_i+1,:} + (E_{\mathrm{pos}})_{i,:}",
                "definition: two lookups",
            ),
            Line(
                r"\partial X_{i,j}/\partial (E_{\mathrm{token}})_{v,j} = 1 \text{ if } "
                r"t_i + 1 = v, \text{ else } 0",
                "a lookup copies: derivative 1 or 0",
            ),
            Line(
                r"(\mathrm{d}E_{\mathrm{token}})_{v,:} = \textstyle\sum_{i:\,t_i+1 = v} "
                r"\mathrm{d}X_{i,:}",
                "chain rule; a token at several positions: paths add (a scatter-add)",
                key=True,
                given=r"(\mathrm{d}E_{\mathrm{token}})_{v,:} =",
            ),
            Line(
                r"(\mathrm{d}E_{\mathrm{pos}})_{i,:} = \mathrm{d}X_{i,:} \text{ for } i \le T, "
                r"\ 0 \text{ for } T < i \le T_{\max}",
                "each position is looked up once; later rows are not used",
            ),
            Line(
                rf"\mathrm{{d}}\,\mathrm{{logits}}_{{{last},:}} = 0,\ A_{{i,{last}}} = 0 "
                rf"\text{{ for }} i < {last} \Rightarrow \mathrm{{d}}X_{{{last},:}} = 0",
                "the last position predicts nothing, and the mask hides it from the others",
            ),
        )
        step = self.step(info, "d.E_token")
        counts = {v: c.tokens.count(v) for v in c.tokens}
        v = max(counts, key=lambda k: (counts[k], -c.tokens.index(k)))
        return Derivation(
            "embedding",
            TITLES["embedding"],
            "The embeddings are looked up, not multiplied: each row of $X$ copies one row of "
            "each table.",
            lines,
            close=(
                "So a row of the token embeddings' gradient is zero when its token is not in "
                "the sentence, and also when its token stands only at the last position "
                rf"({last}), whose row of $\mathrm{{d}}X$ is zero. Row 1 is not zero: the first "
                "query gets no gradient (chapter "
                f"{self.first['attention']}), but the first key and value do."
            ),
            instance=Instance(
                rf"Row {v + 1} of the table, for token {v}, which stands at "
                f"position{'s' if counts[v] > 1 else ''} "
                + ", ".join(str(i + 1) for i, t in enumerate(c.tokens) if t == v)
                + "; its first entry:",
                (self.work(step.name, (v, 0)),),
                step.name,
                (v, 0),
            ),
        )

    # --- AdamW ---------------------------------------------------------------------------
    def adamw(self, info: ChapterInfo) -> Derivation:
        lines = (
            Line(
                r"m_t = \beta_1 m_{t-1} + (1-\beta_1)\,g_t, \quad v_t = \beta_2 v_{t-1} + "
                r"(1-\beta_2)\,g_t^2, \quad m_0 = v_0 = 0",
                "definitions",
            ),
            Line(
                r"m_t = (1-\beta_1)\textstyle\sum_{\tau=1}^{t} \beta_1^{\,t-\tau} g_\tau",
                r"unroll the recursion from $m_0 = 0$",
            ),
            Line(
                r"E[g_\tau] = g:\ E[m_t] = (1-\beta_1)\,g\,\textstyle\sum_{\tau=1}^{t}"
                r"\beta_1^{\,t-\tau} = (1-\beta_1^t)\,g",
                "the mean of a sum is the sum of the means; a geometric sum",
                key=True,
                given=r"E[g_\tau] = g:\ E[m_t] =",
            ),
            Line(
                r"\hat m_t = m_t/(1-\beta_1^t), \quad \hat v_t = v_t/(1-\beta_2^t)",
                r"bias correction: divide the factor out (likewise $E[v_t] = (1-\beta_2^t)\,g^2$)",
            ),
            Line(
                r"t = 1:\ \hat m = g, \quad \hat v = g^2",
                r"$\beta^1 = \beta$",
                key=True,
                given=r"t = 1:\ \hat m =",
            ),
            Line(
                r"\eta\,\hat m/(\sqrt{\hat v} + \epsilon) = \eta\,g/(|g| + \epsilon) "
                r"\approx \eta\operatorname{sign}(g) \text{ for } |g| \gg \epsilon",
                r"$\sqrt{g^2} = |g|$; the step is 0 where $g = 0$",
                key=True,
                given=r"\eta\,\hat m/(\sqrt{\hat v} + \epsilon) =",
            ),
            Line(
                r"\theta' = \theta\,(1 - \eta\lambda) - \eta\,\hat m/(\sqrt{\hat v} + \epsilon)",
                r"decoupled weight decay: $\theta$ shrinks on its own",
            ),
            Line(
                r"\text{L2 instead: } g \to g + \lambda\theta,\ \ \theta' = \theta - \eta\,"
                r"(g + \lambda\theta)/(|g + \lambda\theta| + \epsilon) \text{ at } t = 1",
                r"the decay is divided by the same $\sqrt{\hat v}$ and loses its size",
            ),
        )
        p = self.t.params
        first = next(iter(p))
        updates = {s.desc.role: s.name for s in self.t.updates(first)}
        g_name = self.t.step(updates["m"]).operands[0]
        gv = np.asarray(self.t[g_name])
        nonzero = np.argwhere(gv != 0)
        idx = tuple(int(i) for i in nonzero[0]) if len(nonzero) else (0,) * gv.ndim
        lr, eps = config_const(self.c.lr), config_const(self.c.adam_eps)
        g = self.book.num(g_name, idx)
        step = self.num(lr * g.value / (abs(g.value) + eps))
        return Derivation(
            "adamw",
            TITLES["adamw"],
            r"The moments are running averages that start at 0, so early on they are too "
            r"small; the bias correction scales them back. At the first step that leaves "
            r"only the sign of each gradient.",
            lines,
            close=(
                r"Decoupled, the decay is $\eta\lambda\theta$ for every parameter, however "
                r"small its gradient; added to the gradient (L2), it would be normalized "
                "together with it, and the first step would again be close to "
                r"$\pm\eta$ whatever $\lambda$. The figure below shows every parameter's "
                "step against its gradient."
            ),
            instance=Instance(
                rf"The first element of ${self.sym(first)}$ with a gradient that is not zero: "
                rf"$g = {self.f(g)}$, so $\eta\,g/(|g| + \epsilon) = {self.f(step)}$, "
                r"within $\epsilon$ of $\eta\operatorname{sign}(g)$; its update, as this "
                "chapter prints it:",
                (self.work(updates["updated"], idx),),
                updates["updated"],
                idx,
            ),
        )


def instance_value(d: Derivation, book: Book) -> Num:
    """The printed entry an instance ends on: what the chapter prints there."""
    assert d.instance is not None
    return book.num(d.instance.step, d.instance.idx)


# --- as LaTeX ---------------------------------------------------------------------------------
def lines_tex(d: Derivation, *, blanks: bool = False, marked: bool = False) -> list[str]:
    r"""A derivation's numbered lines (\dline); `blanks`: its key lines left to fill in, only
    their left sides shown; `marked`: its key lines' numbers in bold (the answer key)."""
    out = []
    for k, line in enumerate(d.lines, 1):
        if blanks and line.key:
            text = (f"${line.given}$\\enspace" if line.given else "") + r"\dblank"
        else:
            text = f"${line.math}$"
        number = rf"\textbf{{{k}}}" if marked and line.key else str(k)
        out.append(rf"\dline{{{number}}}{{{text}}}{{{line.rule}}}")
    return out


def restated_tex(d: Derivation, chapter: int) -> list[str]:
    r"""A later chapter's copy of a derivation: its result, in this chapter's symbols."""
    where = rf"chapter {chapter}, p.~\pageref{{d:{d.topic}}}"
    return [
        rf"Derived in full in {where}; in this chapter's symbols the result reads",
        *(rf"\dline{{}}{{${m}$}}{{as derived in chapter {chapter}}}" for m in d.result),
    ]
