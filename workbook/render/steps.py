"""Each kind of trace step as LaTeX: its equation, its per-element formula, and one element
worked with numbers — the symbol → substitution → value rhythm of the workbook.

Nothing here computes: every number is read from the printed chain (`printed.Book`) and
only formatted, so each line shows exactly the numbers its value was computed from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import hand
from ..printed import Book, Num, single
from ..trace import Contraction, Elementwise, Gather, Index, RowWise, Step
from .fmt import Fmt, element, shape, symbol

Values = Mapping[str, np.ndarray]


def _t(name: str, transposed: bool) -> str:
    sym = symbol(name)
    if not transposed:
        return sym
    return f"{{{sym}}}^{{\\top}}" if "^" in sym else f"{sym}^{{\\top}}"


# --- the whole-tensor equation ------------------------------------------------------------
def equation(step: Step) -> str:
    """E.g. Q^{(1)} = X W_Q^{(1)}: the line a chapter or section heading shows."""
    lhs = symbol(step.name)
    i, j = element(step.name, ("i",)), element(step.name, ("j",))
    x_ij = element(step.operands[0], ("i", "j"))
    if isinstance(step, Contraction):
        if step.kind == "matmul":
            a, b = step.operands[:2]
            rhs = rf"{_t(a, step.transpose[0])}\,{_t(b, step.transpose[1])}"
            return f"{lhs} = {rhs}" + (f" + {symbol(step.bias)}" if step.bias else "")
        if step.kind == "jacobian":
            row = element(step.operands[0], ("i", ":"))
            return rf"{element(step.name, ('i', ':'))} = {row}\, J_i"
        if step.kind == "colsum":
            return rf"{j} = \sum_i {x_ij}"
        return rf"{j} = \sum_i {x_ij}\,{element(step.operands[1], ('i', 'j'))}"
    if isinstance(step, Elementwise):
        return general(step)
    if isinstance(step, RowWise):
        src = symbol(step.operands[0])
        return {
            "softmax": rf"{lhs} = \operatorname{{softmax}}_{{\text{{rows}}}}({src})",
            "mean": rf"{i} = \tfrac{{1}}{{n}}\sum_j {x_ij}",
            "sum": rf"{i} = \sum_j {x_ij}",
            "var": rf"{i} = \tfrac{{1}}{{n}}\sum_j ({x_ij} - \mu_i)^2",
            "mean_loss": rf"{lhs} = \tfrac{{1}}{{T-1}}\sum_{{i=1}}^{{T-1}} {src}_i",
        }[step.kind]
    if isinstance(step, Gather):
        return _gather_equation(step)
    raise TypeError(step)


def _gather_equation(step: Gather) -> str:
    lhs, src = symbol(step.name), [symbol(n) for n in step.operands]
    x_ij = element(step.operands[0], ("i", "j"))
    if step.kind == "lookup":
        row = "t_i+1" if step.name.startswith("E_token") else "i"  # ids from 0, rows from 1
        return rf"{element(step.name, ('i', 'j'))} = ({src[0]})_{{{row},j}}"
    if step.kind == "pick":
        return rf"{element(step.name, ('i',))} = p_{{i,\,t_{{i+1}}+1}}"
    if step.kind == "concat":
        heads = r" \mid ".join(src)
        return rf"{lhs} = [\,{heads}\,]"
    if step.kind == "slice":
        first, last = step.offset + 1, step.offset + step.shape[1]
        return rf"{lhs} = {src[0]}_{{:,\,{first}:{last}}}"
    if step.kind == "scatter":
        return rf"{element(step.name, ('v', 'j'))} = \sum_{{i:\,t_i + 1 = v}} {x_ij}"
    return (
        rf"{element(step.name, ('i', 'j'))} = {x_ij} \text{{ for }} i \le T,\ 0 \text{{ otherwise}}"
    )


def dims(step: Step, values: Values) -> str:
    """[5×16]·[16×8] → [5×8] for a product; operand shapes → result shape otherwise."""
    if isinstance(step, Contraction) and step.kind == "matmul":
        a, b = (values[n].shape for n in step.operands[:2])
        a = a[::-1] if step.transpose[0] else a
        b = b[::-1] if step.transpose[1] else b
        return rf"{shape(a)}\cdot{shape(b)} \to {shape(step.shape)}"
    ins = ", ".join(shape(values[n].shape) for n in dict.fromkeys(step.operands))
    return rf"{ins} \to {shape(step.shape)}"


# --- element-wise formulas: general form and substitution ---------------------------------
@dataclass(frozen=True)
class Formula:
    """general(lhs, operand elements) and substitute(numbers, constants, fmt, parts): the
    substitution writes exactly the numbers `hand` computes with, intermediates included."""

    general: Callable[..., str]
    substitute: Callable[..., str]


SQRT_2_OVER_PI = Fmt.const(hand.SQRT_2_OVER_PI)
GELU_C = Fmt.const(hand.GELU_C)
GELU_DC = Fmt.const(hand.GELU_DC)


def _gelu_sub(xs: list[Num], c: Consts, f: Fmt, parts: Parts) -> str:
    x = f.paren(xs[0])
    return (
        rf"0.5\,{x}\bigl(1 + \tanh\bigl({SQRT_2_OVER_PI}\,({f(xs[0])} + "
        rf"{GELU_C}\,{x}^3)\bigr)\bigr) = 0.5\,{x}\,(1 + \tanh {f.paren(parts['u'])})"
        rf" = 0.5\,{x}\,(1 + {f.paren(parts['tanh'])})"
    )


def _gelu_grad_sub(xs: list[Num], c: Consts, f: Fmt, parts: Parts) -> str:
    dy, x, t = f.paren(xs[0]), f.paren(xs[1]), f.paren(parts["tanh"])
    return (
        rf"{dy}\cdot\bigl[0.5(1 + {t}) + 0.5\,{x}(1 - {t}^2)"
        rf"\,{SQRT_2_OVER_PI}\,(1 + {GELU_DC}\,{x}^2)\bigr]"
        rf" = {dy}\cdot{f.paren(parts['grad'])}"
    )


def gelu_tanh_note(f: Fmt, parts: Parts) -> str:
    """The tanh a GELU′ line uses, from the u its GELU line wrote."""
    return rf"\tanh u = \tanh {f.paren(parts['u'])} = {f(parts['tanh'])}"


def _adam_update_sub(xs: list[Num], c: Consts, f: Fmt, parts: Parts) -> str:
    decay = rf"{f(xs[0])}\,(1 - {f.const(c['lr'])}\cdot{f.const(c['weight_decay'])})"
    step = rf"{f.const(c['lr'])}\cdot{f.paren(xs[1])}"
    return (
        rf"{decay} - {step}/(\sqrt{{{f(xs[2])}}} + {f.const(c['eps'])})"
        rf" = {decay} - {step}/({f(parts['sqrt_v'])} + {f.const(c['eps'])})"
    )


def _term(x: Num, f: Fmt, shared: bool) -> str:
    text = x.cell if shared else f(x)
    return f"({text})" if text.startswith("-") or (not shared and x.exp) else text


def plus(xs: list[Num], f: Fmt) -> str:
    """a + b + c as printed; a power of ten all the terms share is stated once."""
    exps = {x.exp for x in xs}
    shared = len(exps) == 1 and next(iter(exps)) != 0
    body = " + ".join(_term(x, f, shared) for x in xs)
    return rf"10^{{{xs[0].exp}}}\bigl[{body}\bigr]" if shared else body


def products(pairs: list[tuple[Num, Num]], f: Fmt) -> str:
    """(a₁)(b₁) + (a₂)(b₂) + … as printed, the factor the terms share stated once."""
    exps = {a.exp + b.exp for a, b in pairs}
    shared = len(exps) == 1
    e = next(iter(exps)) if shared else 0
    if shared:
        body = " + ".join(f"({a.cell})({b.cell})" for a, b in pairs)
        return rf"10^{{{e}}}\bigl[{body}\bigr]" if e else body
    return " + ".join(f"{f.paren(a)}{f.paren(b)}" for a, b in pairs)


Consts = Mapping[str, Any]
Parts = Mapping[str, Num]

FORMULAS: dict[str, Formula] = {
    "embed": Formula(
        lambda lhs, a, b: rf"{lhs} = {a} + {b}",
        lambda xs, c, f, p: plus(xs, f),
    ),
    "add": Formula(lambda lhs, a, b: rf"{lhs} = {a} + {b}", lambda xs, c, f, p: plus(xs, f)),
    "sum": Formula(lambda lhs, *a: rf"{lhs} = " + " + ".join(a), lambda xs, c, f, p: plus(xs, f)),
    "copy": Formula(lambda lhs, a: rf"{lhs} = {a}", lambda xs, c, f, p: f(xs[0])),
    "mul": Formula(
        lambda lhs, a, b: rf"{lhs} = {a}\,{b}",
        lambda xs, c, f, p: rf"{f.paren(xs[0])}\,{f.paren(xs[1])}",
    ),
    "scale_mask": Formula(
        lambda lhs, a: (
            rf"{lhs} = {a}/\sqrt{{d_k}}"
            r" \text{ for } j \le i,\ -\infty \text{ (masked) for } j > i"
        ),
        lambda xs, c, f, p: rf"{f.paren(xs[0])} \cdot {f.const(hand.derived_const(c['scale']))}",
    ),
    "scale": Formula(
        lambda lhs, a: rf"{lhs} = {a}/\sqrt{{d_k}} \text{{ for }} j \le i,\ 0 \text{{ for }} j > i",
        lambda xs, c, f, p: rf"{f.paren(xs[0])} \cdot {f.const(hand.derived_const(c['scale']))}",
    ),
    "gelu": Formula(
        lambda lhs, x: (
            rf"{lhs} = 0.5\,{x}\bigl(1 + \tanh u\bigr),\ u = \sqrt{{2/\pi}}\,({x} + "
            rf"{GELU_C}\,{x}^3)"
        ),
        _gelu_sub,
    ),
    "gelu_backward": Formula(
        lambda lhs, dy, x: (
            rf"{lhs} = {dy}\cdot \mathrm{{GELU}}'({x}),\ \ "
            r"\mathrm{GELU}'(x) = \tfrac12(1 + \tanh u) + \tfrac12 x (1 - \tanh^2 u)\sqrt{2/\pi}"
            rf"(1 + {GELU_DC}\, x^2)"
        ),
        _gelu_grad_sub,
    ),
    "normalize": Formula(
        lambda lhs, x, mu, var: rf"{lhs} = ({x} - {mu}) / \sqrt{{{var} + \varepsilon}}",
        lambda xs, c, f, p: (
            rf"({f(xs[0])} - {f.paren(xs[1])}) / \sqrt{{{f(xs[2])} + {f.const(c['eps'])}}}"
            rf" = ({f(xs[0])} - {f.paren(xs[1])}) / {f.paren(p['sigma'])}"
        ),
    ),
    "affine": Formula(
        lambda lhs, xh, g, b: rf"{lhs} = {g}\,{xh} + {b}",
        lambda xs, c, f, p: rf"{f.paren(xs[1])}\,{f.paren(xs[0])} + {f.paren(xs[2])}",
    ),
    "nll": Formula(
        lambda lhs, p: rf"{lhs} = -\ln {p}", lambda xs, c, f, p: rf"-\ln {f.paren(xs[0])}"
    ),
    "ce_backward": Formula(
        lambda lhs, p: rf"{lhs} = ({p} - y_{{i,j}})/(T-1)",
        lambda xs, c, f, p: rf"({f(xs[0])} - {f.const(c['target'])}) / {c['count']}",
    ),
    "probs_backward": Formula(
        lambda lhs, p: rf"{lhs} = -y_{{i,j}} / \bigl((T-1)\,{p}\bigr)",
        lambda xs, c, f, p: rf"-1 / ({c['count']} \cdot {f(xs[0])})",
    ),
    "ln_backward_fast": Formula(
        lambda lhs, dh, dhm, xh, dhxm, var: (
            rf"{lhs} = ({dh} - {dhm} - {xh}\,{dhxm})"
            rf" / \sqrt{{{var} + \varepsilon}}"
        ),
        lambda xs, c, f, p: (
            rf"({f(xs[0])} - {f.paren(xs[1])} - {f.paren(xs[2])}\,{f.paren(xs[3])})"
            rf" / \sqrt{{{f(xs[4])} + {f.const(c['eps'])}}}"
            rf" = ({f(xs[0])} - {f.paren(xs[1])} - {f.paren(xs[2])}\,{f.paren(xs[3])})"
            rf" / {f.paren(p['sigma'])}"
        ),
    ),
    "softmax_backward_fast": Formula(
        lambda lhs, a, da, s: rf"{lhs} = {a}\,({da} - {s})",
        lambda xs, c, f, p: rf"{f(xs[0])}\,({f(xs[1])} - {f.paren(xs[2])})",
    ),
    "adam_m": Formula(
        lambda lhs, g: rf"{lhs} = \beta_1 \cdot 0 + (1 - \beta_1)\,{g}",
        lambda xs, c, f, p: (
            rf"{f.const(c['beta1'])}\cdot 0 + (1 - {f.const(c['beta1'])})\cdot{f.paren(xs[0])}"
        ),
    ),
    "adam_v": Formula(
        lambda lhs, g: rf"{lhs} = \beta_2 \cdot 0 + (1 - \beta_2)\,{g}^2",
        lambda xs, c, f, p: (
            rf"{f.const(c['beta2'])}\cdot 0 + (1 - {f.const(c['beta2'])})\cdot{f.paren(xs[0])}^2"
        ),
    ),
    "adam_m_hat": Formula(
        lambda lhs, m: rf"{lhs} = {m} / (1 - \beta_1^t)",
        lambda xs, c, f, p: rf"{f.paren(xs[0])} / (1 - {f.const(c['beta1'])}^{{{c['t']}}})",
    ),
    "adam_v_hat": Formula(
        lambda lhs, v: rf"{lhs} = {v} / (1 - \beta_2^t)",
        lambda xs, c, f, p: rf"{f.paren(xs[0])} / (1 - {f.const(c['beta2'])}^{{{c['t']}}})",
    ),
    "adam_update": Formula(
        lambda lhs, th, mh, vh: (
            rf"{lhs} = {th}\,(1 - \eta\lambda) - \eta\,{mh}/(\sqrt{{{vh}}}"
            r" + \epsilon)"
        ),
        _adam_update_sub,
    ),
}

_GENERAL_INDEX = {"ij": ("i", "j"), "i": ("i",), "j": ("j",), "": ()}


def general(step: Elementwise) -> str:
    """The formula of one element in symbols, e.g. X_{i,j} = (E_token)_{t_i,j} + ...."""
    idx = ("i", "j")[: len(step.shape)] if step.shape else ()
    lhs = element(step.name, idx)
    args = []
    for name, how in zip(step.operands, step.align, strict=True):
        sub = _GENERAL_INDEX[how][: len(step.shape)] if how == "ij" else _GENERAL_INDEX[how]
        args.append(element(name, sub))
    return FORMULAS[step.formula].general(lhs, *args)


def is_masked(step: Step, idx: Index) -> bool:
    masked = getattr(step, "consts", {}).get("masked")
    return masked is not None and bool(masked[idx])


def masked_product(step: Step, idx: Index) -> str | None:
    """ "QK" or "d.scores" for an entry of those products above the diagonal: the causal mask
    makes it unneeded (QKᵀ) or zero (its gradient), so it is never expanded or asked for."""
    base = step.name.rsplit(".", 1)[0]
    if base in ("QK", "d.scores") and len(idx) == 2 and idx[1] > idx[0]:
        return base
    return None


# --- a Jacobian's entries, worked ------------------------------------------------------------
def jacobian_entries(step: Contraction, book: Book, f: Fmt) -> list[str]:
    """A diagonal entry of one Jacobian and the entry beside it, from the written inputs; the
    row is the first (LayerNorm) or the last, where no entry is masked (softmax)."""
    softmax = step.jacobian_of == "softmax"
    i = step.shape[0] - 1 if softmax else 0
    J = book.jacobian(step.name, i)
    n = J.shape[0]
    lines = []
    for j, k in ((0, 0), (0, 1))[: min(n, 2)]:
        delta = "1" if j == k else "0"
        if softmax:
            a = book.nums(step.operands[1])[i]
            sub = rf"{f.paren(a[j])}\,({delta} - {f.paren(a[k])})"
        else:
            x_hat = book.nums(step.operands[1])[i]
            var = book.values[step.operands[2]][i]
            s = single(hand.sigma(var, step.jacobian_consts["eps"], book.r), book.digits)
            sub = (
                rf"({delta} - 1/{n} - {f.paren(x_hat[j])}\,{f.paren(x_hat[k])}/{n}) / {f.paren(s)}"
            )
        lines.append(rf"(J_{{{i + 1}}})_{{{j + 1},{k + 1}}} = {sub} = {f(J[j, k])}")
    return lines


# --- rows that are zero by construction ---------------------------------------------------
# Element-wise formulas that are 0 wherever their first input is (a gradient times something),
# and those that are 0 wherever all their inputs are.
ZERO_WITH_FIRST = {"mul", "copy", "scale", "gelu_backward", "ln_backward_fast"}
ZERO_WITH_ALL = {"add", "sum", "embed"}


def _row_is_zero(book: Book, name: str, i: int, transposed: bool = False) -> bool:
    a = book.values[name]
    row = (a.T if transposed else a)[i] if a.ndim else a
    return all(x == 0 for x in np.ravel(row))


def zero_row(step: Step, book: Book, i: int) -> str | None:
    """Why row i of a step's result is zero whatever the numbers, or None: a whole row is
    then stated once with its reason instead of as products of zeros."""
    if not step.shape or len(step.shape) > 2 or not _row_is_zero(book, step.name, i):
        return None
    src = step.operands[0]
    if isinstance(step, Contraction) and step.kind in ("matmul", "jacobian"):
        transposed = step.kind == "matmul" and step.transpose[0]
        if _row_is_zero(book, src, i, transposed):
            which = "column" if transposed else "row"
            return rf"{which} {i + 1} of ${symbol(src)}$ is zero"
    reduction = isinstance(step, RowWise) and step.kind in ("mean", "sum")
    if reduction and len(step.shape) == 1 and _row_is_zero(book, src, i):
        return rf"row {i + 1} of ${symbol(src)}$ is zero"
    if isinstance(step, Elementwise) and len(step.shape) == 2:
        consts = step.constants((i, 0))
        if "weight" in consts and all(
            step.constants((i, j))["weight"] == 0 for j in range(step.shape[1])
        ):
            return "the last position predicts nothing"
        rows = [n for n, how in zip(step.operands, step.align, strict=True) if how == "ij"]
        if step.formula in ZERO_WITH_FIRST and rows[:1] == [src] and _row_is_zero(book, src, i):
            return rf"row {i + 1} of ${symbol(src)}$ is zero"
        if step.formula in ZERO_WITH_ALL and all(_row_is_zero(book, n, i) for n in rows):
            return "the rows it adds are zero"
    return None


def zero_row_line(step: Step, i: int, reason: str) -> str:
    """(dM)_{5,j} = 0 for every j: row 5 of dA is zero."""
    if len(step.shape) == 1:
        return rf"{element(step.name, (i,))} = 0\quad\text{{({reason})}}"
    lhs = element(step.name, (i, "j"))
    return rf"{lhs} = 0 \text{{ for every }} j\quad\text{{({reason})}}"


# --- one element worked out ---------------------------------------------------------------
def work(step: Step, book: Book, idx: Index, f: Fmt) -> str:
    """lhs = substitution = value for one element (math-mode LaTeX), in printed numbers."""
    lhs = element(step.name, idx)
    value = f(book.num(step.name, idx))
    if isinstance(step, Contraction):
        return rf"{lhs} = {expansion(step, book, idx, f)} = {value}"
    if isinstance(step, Elementwise):
        if is_masked(step, idx):
            later = f"position {idx[1] + 1} comes after {idx[0] + 1}"
            return rf"{lhs} = {value} \quad\text{{(masked: {later})}}"
        consts = step.constants(idx)
        if "weight" in consts and consts["weight"] == 0:
            return rf"{lhs} = 0 \quad\text{{(the last position predicts nothing)}}"
        if step.formula == "probs_backward" and consts["target"] == 0:
            return rf"{lhs} = 0 \quad\text{{(not the next token)}}"
        parts = {k: book.part(step.name, idx, k) for k in book.parts[step.name].get(idx, {})}
        sub = FORMULAS[step.formula].substitute(book.inputs(step, idx), consts, f, parts)
        line = rf"{lhs} = {sub} = {value}"
        if step.formula == "gelu_backward":  # first the tanh u the line is about to use
            return rf"{gelu_tanh_note(f, parts)},\quad {line}"
        return line
    if isinstance(step, Gather):
        src = step.sources(book.values, idx)
        if not src:
            return rf"{lhs} = 0"
        names = " + ".join(element(n, k) for n, k in src)
        if len(src) == 1:
            return rf"{lhs} = {names} = {value}"
        return rf"{lhs} = {names} = {plus([book.num(n, k) for n, k in src], f)} = {value}"
    if isinstance(step, RowWise):
        return _work_reduction(step, book, idx, f)
    raise TypeError(step)


def expansion(step: Contraction, book: Book, idx: Index, f: Fmt) -> str:
    """The sum of products, in index order, with the operands as their tables print them."""
    if step.kind == "colsum":
        col = book.nums(step.operands[0])[:, idx[0]]
        return plus(list(col), f)
    if step.kind == "jacobian":
        i, j = idx
        a, b = book.nums(step.operands[0])[i], book.jacobian(step.name, i)[:, j]
    else:
        a, b = step.factors({n: book.nums(n) for n in step.operands}, idx)
    body = products(list(zip(a, b, strict=True)), f)
    if step.bias is None:
        return body
    return rf"{body} + {f.paren(book.num(step.bias, idx[-1:]))}"


def _work_reduction(step: RowWise, book: Book, idx: Index, f: Fmt) -> str:
    lhs = element(step.name, idx)
    row = list(step.row({step.operands[0]: book.nums(step.operands[0])}, idx))
    value = f(book.num(step.name, idx))
    if step.kind == "mean":
        return rf"{lhs} = \bigl({plus(row, f)}\bigr) / {len(row)} = {value}"
    if step.kind == "var":
        mu = f.paren(book.num(step.operands[1], idx[:1]))
        sq = " + ".join(rf"{{({f(x)} - {mu})^2}}" for x in row)  # unbreakable
        return rf"{lhs} = \bigl({sq}\bigr) / {len(row)} = {value}"
    if step.kind == "sum":
        return rf"{lhs} = {plus(row, f)} = {value}"
    if step.kind == "mean_loss":
        return rf"{lhs} = \bigl({plus(row[: step.count], f)}\bigr) / {step.count} = {value}"
    raise ValueError(step.kind)


def softmax_row(step: RowWise, book: Book, i: int, f: Fmt) -> list[str]:
    """One row of a softmax: the maximum, each exponential, their sum, each probability."""
    row = list(step.row({step.operands[0]: book.nums(step.operands[0])}, (i, 0)))
    parts = book.parts[step.name][(i,)]
    live = sorted(int(k[1:]) for k in parts if k.startswith("e"))
    e = {j: book.part(step.name, (i,), f"e{j}") for j in live}
    total = book.part(step.name, (i,), "sum")
    top_value = hand.sig(book.parts[step.name][(i,)]["max"], book.digits)
    top = next(
        x for x in row if x.value.is_finite() and x.value == top_value
    )  # as its table prints it
    src = step.operands[0]
    lines = [rf"s^{{\max}}_{{{i + 1}}} = \max_j {element(src, (i, 'j'))} = {f(top)}"]
    lines += [rf"e_{{{j + 1}}} = \exp({f(row[j])} - {f.paren(top)}) = {f(e[j])}" for j in live]
    lines.append(rf"\textstyle\sum_j e_j = {plus(list(e.values()), f)} = {f(total)}")
    for j in range(len(row)):
        lhs = element(step.name, (i, j))
        if j in e:
            lines.append(rf"{lhs} = {f(e[j])} / {f(total)} = {f(book.num(step.name, (i, j)))}")
        else:
            lines.append(rf"{lhs} = 0 \quad\text{{(masked)}}")
    return lines
