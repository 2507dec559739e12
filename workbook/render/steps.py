"""Each kind of trace step as LaTeX: its equation, its per-element formula, and one element
worked with numbers — the symbol → substitution → value rhythm of the workbook.

Nothing here computes: every number is read from the trace and only formatted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from .. import ops
from ..trace import Contraction, Elementwise, Gather, Index, RowWise, Step
from .fmt import NumberFormat, element, shape, symbol

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
            return rf"{element(step.name, ('i', ':'))} = {row}\, J^{{(i)}}"
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
        row = "t_i" if step.name.startswith("E_token") else "i"
        return rf"{element(step.name, ('i', 'j'))} = ({src[0]})_{{{row},j}}"
    if step.kind == "pick":
        return rf"{element(step.name, ('i',))} = p_{{i,\,t_{{i+1}}}}"
    if step.kind == "concat":
        heads = r" \mid ".join(src)
        return rf"{lhs} = [\,{heads}\,]"
    if step.kind == "slice":
        first, last = step.offset + 1, step.offset + step.shape[1]
        return rf"{lhs} = {src[0]}_{{:,\,{first}:{last}}}"
    if step.kind == "scatter":
        return rf"{element(step.name, ('v', 'j'))} = \sum_{{i:\,t_i = v}} {x_ij}"
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
    """general(lhs, operand elements, constants) and substitute(numbers, constants, fmt)."""

    general: Callable[..., str]
    substitute: Callable[..., str]


def _gelu_sub(x: float, f: NumberFormat) -> str:
    parts = ops.gelu_parts(x)
    return (
        rf"0.5\,{f.paren(x)}\bigl(1 + \tanh\bigl({f(ops.SQRT_2_OVER_PI)}\,({f(x)} + "
        rf"{ops.GELU_C}\,{f.paren(x)}^3)\bigr)\bigr) = 0.5\,{f.paren(x)}\,"
        rf"(1 + \tanh {f.paren(parts['u'])})"
    )


def _gelu_grad_sub(dy: float, x: float, f: NumberFormat) -> str:
    parts = ops.gelu_parts(x)
    t = parts["tanh"]
    return (
        rf"{f.paren(dy)}\cdot\bigl[0.5(1 + {f.paren(t)}) + 0.5\,{f.paren(x)}(1 - {f.paren(t)}^2)"
        rf"\,{f(ops.SQRT_2_OVER_PI)}\,(1 + {ops.GELU_DC:g}\,{f.paren(x)}^2)\bigr]"
        rf" = {f.paren(dy)}\cdot{f.paren(parts['grad'])}"
    )


def _plus(xs: list[float], f: NumberFormat) -> str:
    return " + ".join(f.paren(x) if x < 0 else f(x) for x in xs)


FORMULAS: dict[str, Formula] = {
    "embed": Formula(
        lambda lhs, a, b: rf"{lhs} = {a} + {b}",
        lambda xs, c, f: _plus(xs, f),
    ),
    "add": Formula(lambda lhs, a, b: rf"{lhs} = {a} + {b}", lambda xs, c, f: _plus(xs, f)),
    "sum": Formula(lambda lhs, *a: rf"{lhs} = " + " + ".join(a), lambda xs, c, f: _plus(xs, f)),
    "copy": Formula(lambda lhs, a: rf"{lhs} = {a}", lambda xs, c, f: f(xs[0])),
    "mul": Formula(
        lambda lhs, a, b: rf"{lhs} = {a}\,{b}",
        lambda xs, c, f: rf"{f.paren(xs[0])}\,{f.paren(xs[1])}",
    ),
    "scale_mask": Formula(
        lambda lhs, a: (
            rf"{lhs} = {a}/\sqrt{{d_k}}"
            r" \text{ for } j \le i,\ -\infty \text{ (masked) for } j > i"
        ),
        lambda xs, c, f: rf"{f(xs[0])} \cdot {f(c['scale'])}",
    ),
    "scale": Formula(
        lambda lhs, a: rf"{lhs} = {a}/\sqrt{{d_k}} \text{{ for }} j \le i,\ 0 \text{{ for }} j > i",
        lambda xs, c, f: rf"{f(xs[0])} \cdot {f(c['scale'])}",
    ),
    "gelu": Formula(
        lambda lhs, x: (
            rf"{lhs} = 0.5\,{x}\bigl(1 + \tanh\bigl(\sqrt{{2/\pi}}\,({x} + "
            rf"{ops.GELU_C}\,{x}^3)\bigr)\bigr)"
        ),
        lambda xs, c, f: _gelu_sub(xs[0], f),
    ),
    "gelu_backward": Formula(
        lambda lhs, dy, x: (
            rf"{lhs} = {dy}\cdot \mathrm{{GELU}}'({x}),\ \ "
            r"\mathrm{GELU}'(x) = \tfrac12(1 + \tanh u) + \tfrac12 x (1 - \tanh^2 u)\sqrt{2/\pi}"
            rf"(1 + {ops.GELU_DC:g} x^2)"
        ),
        lambda xs, c, f: _gelu_grad_sub(xs[0], xs[1], f),
    ),
    "normalize": Formula(
        lambda lhs, x, mu, var: rf"{lhs} = ({x} - {mu}) / \sqrt{{{var} + \varepsilon}}",
        lambda xs, c, f: (
            rf"({f(xs[0])} - {f.paren(xs[1])}) / \sqrt{{{f(xs[2])} + {f.const(c['eps'])}}}"
        ),
    ),
    "affine": Formula(
        lambda lhs, xh, g, b: rf"{lhs} = {g}\,{xh} + {b}",
        lambda xs, c, f: rf"{f.paren(xs[1])}\,{f.paren(xs[0])} + {f.paren(xs[2])}",
    ),
    "nll": Formula(lambda lhs, p: rf"{lhs} = -\ln {p}", lambda xs, c, f: rf"-\ln {f(xs[0])}"),
    "ce_backward": Formula(
        lambda lhs, p: rf"{lhs} = ({p} - y_{{i,j}})/(T-1)",
        lambda xs, c, f: rf"({f(xs[0])} - {f.const(c['target'])}) / {c['count']}",
    ),
    "probs_backward": Formula(
        lambda lhs, p: rf"{lhs} = -y_{{i,j}} / \bigl((T-1)\,{p}\bigr)",
        lambda xs, c, f: rf"-1 / ({c['count']} \cdot {f(xs[0])})",
    ),
    "ln_backward_fast": Formula(
        lambda lhs, dh, dhm, xh, dhxm, var: (
            rf"{lhs} = ({dh} - {dhm} - {xh}\,{dhxm})"
            rf" / \sqrt{{{var} + \varepsilon}}"
        ),
        lambda xs, c, f: (
            rf"({f(xs[0])} - {f.paren(xs[1])} - {f.paren(xs[2])}\,{f.paren(xs[3])})"
            rf" / \sqrt{{{f(xs[4])} + {f.const(c['eps'])}}}"
        ),
    ),
    "softmax_backward_fast": Formula(
        lambda lhs, a, da, s: rf"{lhs} = {a}\,({da} - {s})",
        lambda xs, c, f: rf"{f(xs[0])}\,({f(xs[1])} - {f.paren(xs[2])})",
    ),
    "adam_m": Formula(
        lambda lhs, g: rf"{lhs} = \beta_1 \cdot 0 + (1 - \beta_1)\,{g}",
        lambda xs, c, f: (
            rf"{f.const(c['beta1'])}\cdot 0 + (1 - {f.const(c['beta1'])})\cdot{f.paren(xs[0])}"
        ),
    ),
    "adam_v": Formula(
        lambda lhs, g: rf"{lhs} = \beta_2 \cdot 0 + (1 - \beta_2)\,{g}^2",
        lambda xs, c, f: (
            rf"{f.const(c['beta2'])}\cdot 0 + (1 - {f.const(c['beta2'])})\cdot{f.paren(xs[0])}^2"
        ),
    ),
    "adam_m_hat": Formula(
        lambda lhs, m: rf"{lhs} = {m} / (1 - \beta_1^t)",
        lambda xs, c, f: rf"{f(xs[0])} / (1 - {f.const(c['beta1'])}^{{{c['t']}}})",
    ),
    "adam_v_hat": Formula(
        lambda lhs, v: rf"{lhs} = {v} / (1 - \beta_2^t)",
        lambda xs, c, f: rf"{f(xs[0])} / (1 - {f.const(c['beta2'])}^{{{c['t']}}})",
    ),
    "adam_update": Formula(
        lambda lhs, th, mh, vh: (
            rf"{lhs} = {th}\,(1 - \eta\lambda) - \eta\,{mh}/(\sqrt{{{vh}}}"
            r" + \epsilon)"
        ),
        lambda xs, c, f: (
            rf"{f(xs[0])}\,(1 - {f.const(c['lr'])}\cdot{f.const(c['weight_decay'])}) - "
            rf"{f.const(c['lr'])}\cdot{f.paren(xs[1])}/(\sqrt{{{f(xs[2])}}} + {f.const(c['eps'])})"
        ),
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


# --- one element worked out ---------------------------------------------------------------
def work(step: Step, values: Values, idx: Index, f: NumberFormat) -> str:
    """lhs = substitution = value for one element (math-mode LaTeX)."""
    lhs = element(step.name, idx)
    value = f(float(step.result[idx]))
    if isinstance(step, Contraction):
        return rf"{lhs} = {expansion(step, values, idx, f)} = {value}"
    if isinstance(step, Elementwise):
        if is_masked(step, idx):
            later = f"position {idx[1] + 1} comes after {idx[0] + 1}"
            return rf"{lhs} = {value} \quad\text{{(masked: {later})}}"
        consts = step.constants(idx)
        if "weight" in consts and consts["weight"] == 0:
            return rf"{lhs} = 0 \quad\text{{(the last position predicts nothing)}}"
        if step.formula == "probs_backward" and consts["target"] == 0:
            return rf"{lhs} = 0 \quad\text{{(not the next token)}}"
        sub = FORMULAS[step.formula].substitute(step.inputs(values, idx), consts, f)
        return rf"{lhs} = {sub} = {value}"
    if isinstance(step, Gather):
        src = step.sources(values, idx)
        if not src:
            return rf"{lhs} = 0"
        names = " + ".join(element(n, k) for n, k in src)
        nums = _plus([float(values[n][k]) for n, k in src], f)
        return (
            rf"{lhs} = {names} = {nums} = {value}"
            if len(src) > 1
            else rf"{lhs} = {names} = {value}"
        )
    if isinstance(step, RowWise):
        return _work_reduction(step, values, idx, f)
    raise TypeError(step)


def expansion(step: Contraction, values: Values, idx: Index, f: NumberFormat) -> str:
    """The sum of products, in index order, with the printed operands."""
    a, b = step.factors(values, idx)
    if step.kind == "colsum":
        body = _plus(a.tolist(), f)
    else:
        body = " + ".join(
            f"{f.paren(x)}{f.paren(y)}" for x, y in zip(a.tolist(), b.tolist(), strict=True)
        )
    bias = step.bias_value(values, idx)
    return body if bias is None else rf"{body} + {f.paren(bias)}"


def _work_reduction(step: RowWise, values: Values, idx: Index, f: NumberFormat) -> str:
    lhs = element(step.name, idx)
    row = step.row(values, idx)
    value = f(float(step.result[idx]))
    if step.kind == "mean":
        return rf"{lhs} = ({_plus(row.tolist(), f)}) / {row.size} = {value}"
    if step.kind == "var":
        mu = float(values[step.name.replace("var", "mean")][idx[0]])
        sq = " + ".join(rf"{{({f(x)} - {f.paren(mu)})^2}}" for x in row.tolist())  # unbreakable
        return rf"{lhs} = \bigl({sq}\bigr) / {row.size} = {value}"
    if step.kind == "sum":
        return rf"{lhs} = {_plus(row.tolist(), f)} = {value}"
    if step.kind == "mean_loss":
        return rf"{lhs} = ({_plus(row[: step.count].tolist(), f)}) / {step.count} = {value}"
    raise ValueError(step.kind)


def softmax_row(step: RowWise, values: Values, i: int, f: NumberFormat) -> list[str]:
    """One row of a softmax: the maximum, each exponential, their sum, each probability."""
    row = step.row(values, (i, 0))
    top, exps, total = ops.softmax_parts(row)
    src = step.operands[0]
    lines = [rf"m_{{{i + 1}}} = \max_j {element(src, (i, 'j'))} = {f(top)}"]
    lines += [
        rf"e_{{{j + 1}}} = \exp({f(float(row[j]))} - {f.paren(top)}) = {f(exps[j])}" for j in exps
    ]
    lines.append(rf"\textstyle\sum_j e_j = {_plus(list(exps.values()), f)} = {f(total)}")
    for j in range(row.size):
        lhs = element(step.name, (i, j))
        if j in exps:
            lines.append(rf"{lhs} = {f(exps[j])} / {f(total)} = {f(float(step.result[i, j]))}")
        else:
            lines.append(rf"{lhs} = 0 \quad\text{{(masked)}}")
    return lines
