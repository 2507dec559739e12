"""Named mistakes, each a small variant of a step's computation, evaluated by the same hand
arithmetic as the key: a product with a factor transposed, a scaling left out, a softmax over
columns, a variance divided by n − 1, AdamW without bias correction ...

A mistake gives the values one entry takes under it (`values`), from whatever inputs it is
handed: the student's own earlier answers or the right ones. The grader names a mistake when
one of those values is what the student wrote; nothing compares strings. `rank` orders the
mistakes most likely at a kind of step first (the diagnostic key prints the first few).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import ROUND_DOWN, Decimal, localcontext

import numpy as np

from . import hand
from .formulas import FORMULAS, Formula
from .hand import HALF, ZERO, Rounder, config_const, sig
from .printed import element
from .trace import Contraction, Elementwise, Index, RowWise, Step, Trace

Values = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Entry:
    """One value a student writes: an entry of a step's result, or a value its line writes
    on the way (`part`: a softmax row's "max", "e2", "sum"; GELU's "u", "tanh")."""

    step: Step
    idx: Index  # the result's entry; for a softmax row's max and sum, (i, 0)
    part: str = ""

    def of(self, value: Decimal, parts: hand.Parts) -> Decimal:
        return parts[self.part] if self.part else value


@dataclass(frozen=True)
class Inputs:
    """What a mistake computes from: the values of every quantity (the student's own, or
    the key's), the values written on the way to use (`own`), the rules' rounding and the
    trace (for the masks and the shapes)."""

    values: Values
    r: Rounder
    t: Trace
    # the values a student wrote on the way that come before the entry in its line
    own: Callable[[Entry], hand.Parts | None] = lambda e: None

    def evaluate(self, step: Step, e: Entry, r: Rounder | None = None) -> Decimal | None:
        """The entry as `step` (a variant of e.step) gives it, or None where it cannot."""
        try:
            with localcontext(hand.CONTEXT):
                value, parts = element(step, self.values, e.idx, r or self.r, own=self.own(e))
                return e.of(value, parts)
        except (IndexError, KeyError, ValueError, ArithmeticError):
            return None


@dataclass(frozen=True)
class Mistake:
    key: str
    name: str  # what the report and the grade sheet call it
    explain: str  # one sentence to the student
    applies: Callable[[Entry], bool]
    values: Callable[[Entry, Inputs], list[Decimal | None]]
    rank: int = 5  # lower: more likely where it applies
    acceptable: bool = False  # another rule, not a mistake: graded as follow-through
    rounding: bool = False  # a slip of the digits, not of the method: may earn part credit
    told: str = ""  # what a key's diagnosis calls its first value, when not `name`
    fewer_digits: bool = False  # only for an answer written with fewer digits


# --- what a step is -------------------------------------------------------------------------
def _formula(e: Entry) -> str:
    return e.step.formula.name if isinstance(e.step, Elementwise) else ""


def _is(*names: str) -> Callable[[Entry], bool]:
    return lambda e: not e.part and _formula(e) in names


def _product(e: Entry) -> bool:
    return not e.part and isinstance(e.step, Contraction) and e.step.kind == "matmul"


def _contraction(e: Entry) -> bool:
    return not e.part and isinstance(e.step, Contraction)


def _softmax(e: Entry) -> bool:
    return isinstance(e.step, RowWise) and e.step.kind == "softmax"


def _gradient(e: Entry) -> bool:
    return e.step.name.startswith("d.") and not e.part


def _adam(*roles: str) -> Callable[[Entry], bool]:
    return lambda e: bool(e.step.desc.of) and e.step.desc.role in roles


# --- products ---------------------------------------------------------------------------
def _fits(step: Contraction, values: Values) -> bool:
    a, b = (np.shape(values[n]) for n in step.operands[:2])
    a = a[::-1] if step.transpose[0] else a
    b = b[::-1] if step.transpose[1] else b
    return len(a) == len(b) == 2 and a[1] == b[0] and (a[0], b[1]) == step.shape


def _variants(e: Entry, x: Inputs, steps: list[Step]) -> list[Decimal | None]:
    return [x.evaluate(s, e) for s in steps if _fits(s, x.values)]


def _transposed(side: int) -> Callable[[Entry, Inputs], list[Decimal | None]]:
    """The product with its left (0) or right (1) factor transposed."""

    def values(e: Entry, x: Inputs) -> list[Decimal | None]:
        flags = list(e.step.transpose)
        flags[side] = not flags[side]
        return _variants(e, x, [replace(e.step, transpose=tuple(flags))])

    return values


def _swapped(e: Entry, x: Inputs) -> list[Decimal | None]:
    """B A for A B; with the transposes kept in place, Q Kᵀ becomes K Qᵀ, its transpose."""
    a, b, *bias = e.step.operands
    ta, tb = e.step.transpose
    return _variants(
        e,
        x,
        [
            replace(e.step, operands=(b, a, *bias), transpose=(ta, tb)),
            replace(e.step, operands=(b, a, *bias), transpose=(tb, ta)),
        ],
    )


def _neighbour(e: Entry, x: Inputs) -> list[Decimal | None]:
    """The entry one row or column over: a row of the left factor or a column of the right
    one taken from beside the right one."""
    out = []
    for di, dj in ((1, 0), (-1, 0), (0, 1), (0, -1))[: 2 * len(e.idx)]:
        idx = tuple(i + d for i, d in zip(e.idx, (di, dj), strict=False))
        if all(0 <= i < n for i, n in zip(idx, e.step.shape, strict=True)):
            out.append(x.evaluate(e.step, Entry(e.step, idx)))
    return out


def _no_bias(e: Entry, x: Inputs) -> list[Decimal | None]:
    return [x.evaluate(replace(e.step, operands=e.step.operands[:2], bias=None), e)]


def _terms(e: Entry, x: Inputs) -> list[Decimal]:
    """The products (and the bias) whose sum is the entry, as the rules write them."""
    step = e.step
    if step.kind == "colsum":
        return list(x.values[step.operands[0]][:, e.idx[0]])
    if step.kind == "jacobian":
        jac = hand.JACOBIANS[step.jacobian_of]
        i, j = e.idx
        rows = [
            list(x.values[n][i]) if x.values[n].ndim == 2 else x.values[n][i]
            for n in step.operands[1:]
        ]
        column = [row[j] for row in jac(*rows, **step.jacobian_consts, r=x.r)]
        a, b = x.values[step.operands[0]][i], column
    else:
        a, b = step.factors(x.values, e.idx)
    bias = [] if step.bias is None else [x.values[step.bias][e.idx[-1]]]
    return [p * q for p, q in zip(a, b, strict=True)] + bias


def _sign_of_a_term(e: Entry, x: Inputs) -> list[Decimal | None]:
    terms = _terms(e, x)
    total = sum(terms, ZERO)
    return [x.r(total - 2 * t) for t in terms if t != 0]


def _rounded_products(e: Entry, x: Inputs) -> list[Decimal | None]:
    terms = _terms(e, x)
    return [x.r(sum((x.r(t) for t in terms), ZERO))] if len(terms) > 1 else []


def _jacobian_diagonal(e: Entry, x: Inputs) -> list[Decimal | None]:
    step = e.step
    i, j = e.idx
    rows = [
        list(x.values[n][i]) if x.values[n].ndim == 2 else x.values[n][i] for n in step.operands[1:]
    ]
    jac = hand.JACOBIANS[step.jacobian_of](*rows, **step.jacobian_consts, r=x.r)
    return [x.r(x.values[step.operands[0]][i, j] * jac[j][j])]


# --- scaling ------------------------------------------------------------------------------
def _scaled(factor: Callable[[float], list[float]]) -> Callable:
    def values(e: Entry, x: Inputs) -> list[Decimal | None]:
        scale = e.step.consts["scale"]
        return [
            x.evaluate(replace(e.step, consts={**e.step.consts, "scale": s}), e)
            for s in factor(scale)
        ]

    return values


def _rounded_constant(scale: float) -> list[float]:
    """1/√d_k from √d_k rounded to 4 digits (1/1.414 for d_k = 2), or itself so rounded."""
    root = float(sig(Decimal(1 / scale), 4))
    return [1 / root, float(sig(Decimal(scale), 4))]


# --- masks and softmax --------------------------------------------------------------------
def _masked_source(e: Entry, x: Inputs) -> Elementwise | None:
    """The scale-and-mask step a softmax reads, if it reads one."""
    src = x.t.producer(e.step.operands[0])
    if isinstance(src, Elementwise) and "masked" in src.consts:
        return src
    return None


def _no_mask(e: Entry, x: Inputs) -> list[Decimal | None]:
    """Softmax of the whole row: the masked scores as the scaling gives them (the product's
    entries above the diagonal, scaled)."""
    src = _masked_source(e, x)
    if src is None:
        return []
    scores = np.array(x.values[src.name], dtype=object)
    unmasked = replace(src, consts={**src.consts, "masked": np.zeros(src.shape, dtype=bool)})
    for idx in zip(*np.nonzero(src.consts["masked"]), strict=True):
        scores[idx] = x.evaluate(unmasked, Entry(unmasked, idx))
    probs, _ = hand.softmax_row(list(scores[e.idx[0]]), x.r)
    return [probs[e.idx[1]]]


def _over_columns(e: Entry, x: Inputs) -> list[Decimal | None]:
    i, j = e.idx
    column = list(x.values[e.step.operands[0]][:, j])
    if not column[i].is_finite():
        return []
    probs, _ = hand.softmax_row(column, x.r)
    return [probs[i]]


def _no_exponentials(e: Entry, x: Inputs) -> list[Decimal | None]:
    i, j = e.idx
    row = [s for s in x.values[e.step.operands[0]][i] if s.is_finite()]
    total = sum(row, ZERO)
    s = x.values[e.step.operands[0]][i, j]
    return [x.r(s / total)] if total != 0 and s.is_finite() else []


def _row_parts(e: Entry, x: Inputs, i: int) -> hand.Parts:
    """Row i's written values: the student's own where they wrote them."""
    row = list(x.values[e.step.operands[0]][i])
    return hand.softmax_row(row, x.r, x.own(Entry(e.step, (i, 0))))[1]


def _sum_of_another_row(e: Entry, x: Inputs) -> list[Decimal | None]:
    i, j = e.idx
    mine = _row_parts(e, x, i)
    if f"e{j}" not in mine:
        return []
    others = [k for k in (i - 1, i + 1) if 0 <= k < e.step.shape[0]]
    return [x.r(mine[f"e{j}"] / _row_parts(e, x, k)["sum"]) for k in others]


def _no_max_shift(e: Entry, x: Inputs) -> list[Decimal | None]:
    """e_j = exp(s_j) without subtracting the row's maximum: the probabilities are the same."""
    i, j = e.idx[0], int(e.part[1:])
    s = x.values[e.step.operands[0]][i, j]
    return [x.r(s.exp())] if s.is_finite() else []


# --- GELU -------------------------------------------------------------------------------
def _gelu_like(name: str, fn: Callable[[Decimal, Rounder], tuple[Decimal, hand.Parts]]):
    """A variant of GELU's formula object, evaluated like GELU."""
    return replace(FORMULAS["gelu"], name=name, hand=lambda xs, c, r, own=None: fn(xs[0], r))


def _gelu_erf(x: Decimal, r: Rounder) -> tuple[Decimal, hand.Parts]:
    erf = Decimal(math.erf(float(x) / math.sqrt(2)))
    return r(HALF * x * (1 + erf)), {}


def _relu(x: Decimal, r: Rounder) -> tuple[Decimal, hand.Parts]:
    return r(max(x, ZERO)), {}


def _gelu_no_cubic(x: Decimal, r: Rounder) -> tuple[Decimal, hand.Parts]:
    u = r(hand.SQRT_2_OVER_PI * x)
    t = r(hand.tanh(u))
    return r(HALF * x * (1 + t)), {"u": u, "tanh": t}


def _formula_variant(formula: Formula) -> Callable:
    return lambda e, x: [x.evaluate(replace(e.step, formula=formula), e)]


# --- LayerNorm ----------------------------------------------------------------------------
def _sample_variance(e: Entry, x: Inputs) -> list[Decimal | None]:
    row = list(e.step.row(x.values, e.idx))
    mu = x.values[e.step.operands[1]][e.idx[0]]
    return [x.r(sum(((v - mu) ** 2 for v in row), ZERO) / (len(row) - 1))]


def _no_eps(e: Entry, x: Inputs) -> list[Decimal | None]:
    return [x.evaluate(replace(e.step, consts={**e.step.consts, "eps": 0.0}), e)]


def _by_variance(e: Entry, x: Inputs) -> list[Decimal | None]:
    """Divided by σ² + ε instead of its square root."""
    xs = e.step.raw_inputs(x.values, e.idx)
    var = xs[-1] + config_const(e.step.consts["eps"])
    if var == 0:
        return []
    top = xs[0] - xs[1] if _formula(e) == "normalize" else xs[0] - xs[1] - xs[2] * xs[3]
    return [x.r(top / var)]


# --- gradients ----------------------------------------------------------------------------
def _negated(e: Entry, x: Inputs) -> list[Decimal | None]:
    value = x.evaluate(e.step, e)
    return [] if value is None else [-value]


def _no_mean(e: Entry, x: Inputs) -> list[Decimal | None]:
    if isinstance(e.step, RowWise):  # the loss: the sum of the losses, not their mean
        return [x.r(sum(list(e.step.row(x.values, e.idx))[: e.step.count], ZERO))]
    return [x.evaluate(replace(e.step, consts={**e.step.consts, "count": 1}), e)]


# --- AdamW --------------------------------------------------------------------------------
def _adam_inputs(e: Entry, x: Inputs) -> dict[str, Decimal]:
    """θ, g, m and v of the entry, as `x` has them."""
    p = e.step.desc.of
    names = {s.desc.role: s for s in x.t.updates(p)}
    g = names["m"].operands[0]
    return {
        "theta": x.values[p][e.idx],
        "g": x.values[g][e.idx],
        "m": x.values[names["m"].name][e.idx],
        "v": x.values[names["v"].name][e.idx],
    }


def _adam_consts(e: Entry, x: Inputs) -> dict[str, Decimal]:
    update = next(s for s in x.t.updates(e.step.desc.of) if s.desc.role == "updated")
    m = next(s for s in x.t.updates(e.step.desc.of) if s.desc.role == "m")
    v = next(s for s in x.t.updates(e.step.desc.of) if s.desc.role == "v")
    c = update.consts
    return {
        "lr": config_const(c["lr"]),
        "wd": config_const(c["weight_decay"]),
        "eps": config_const(c["eps"]),
        "b1": config_const(m.consts["beta1"]),
        "b2": config_const(v.consts["beta2"]),
    }


def _step(theta: Decimal, m: Decimal, v: Decimal, k: dict, r: Rounder, decay: bool) -> Decimal:
    kept = theta * (1 - k["lr"] * k["wd"]) if decay else theta
    return r(kept - k["lr"] * m / (r(v.sqrt()) + k["eps"]))


def _no_bias_correction(e: Entry, x: Inputs) -> list[Decimal | None]:
    a = _adam_inputs(e, x)
    if e.step.desc.role == "m_hat":
        return [a["m"]]
    if e.step.desc.role == "v_hat":
        return [a["v"]]
    return [_step(a["theta"], a["m"], a["v"], _adam_consts(e, x), x.r, True)]


def _l2(e: Entry, x: Inputs) -> list[Decimal | None]:
    """Weight decay added to the gradient (L2), not decoupled: g' = g + λθ throughout."""
    a, k, r = _adam_inputs(e, x), _adam_consts(e, x), x.r
    g = a["g"] + k["wd"] * a["theta"]
    m, v = r((1 - k["b1"]) * g), r((1 - k["b2"]) * g * g)
    m_hat, v_hat = r(m / (1 - k["b1"])), r(v / (1 - k["b2"]))
    role = e.step.desc.role
    return [
        {"m": m, "v": v, "m_hat": m_hat, "v_hat": v_hat}.get(role)
        or _step(a["theta"], m_hat, v_hat, k, r, False)
    ]


def _sgd(e: Entry, x: Inputs) -> list[Decimal | None]:
    a, k = _adam_inputs(e, x), _adam_consts(e, x)
    step = k["lr"] * a["g"]
    return [x.r(a["theta"] * (1 - k["lr"] * k["wd"]) - step), x.r(a["theta"] - step)]


# --- arithmetic ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Truncating(Rounder):
    """Cuts to the digits instead of rounding."""

    def __call__(self, x: Decimal) -> Decimal:
        if not x.is_finite():
            return x
        if abs(x) < hand.UNDERFLOW:
            return ZERO
        with localcontext(hand.CONTEXT):
            return x.quantize(Decimal(1).scaleb(x.adjusted() - self.digits + 1), ROUND_DOWN)


def _unrounded(e: Entry, x: Inputs) -> list[Decimal | None]:
    """Every earlier value kept to the calculator's digits: the exact step, rounded once."""
    return [x.r(hand.dec(float(e.step.result[e.idx])))]


def _truncated(e: Entry, x: Inputs) -> list[Decimal | None]:
    return [x.evaluate(e.step, e, Truncating(x.r.digits))]


def _fewer_digits(e: Entry, x: Inputs) -> list[Decimal | None]:
    return [x.evaluate(e.step, e, Rounder(d)) for d in (x.r.digits - 1, x.r.digits - 2) if d > 0]


def _any(e: Entry) -> bool:
    return True


CATALOGUE: tuple[Mistake, ...] = (
    Mistake(
        "left_transposed",
        "the left factor transposed",
        "You used the left factor transposed: its columns where the formula takes its rows.",
        _product,
        _transposed(0),
        rank=2,
    ),
    Mistake(
        "right_transposed",
        "the right factor transposed",
        "You used the right factor transposed: its rows where the formula takes its columns.",
        _product,
        _transposed(1),
        rank=2,
    ),
    Mistake(
        "factors_swapped",
        "the factors swapped",
        "You swapped the two factors, so each entry combines the wrong row with the wrong column.",
        _product,
        _swapped,
        rank=1,
    ),
    Mistake(
        "neighbour",
        "a neighbouring row or column",
        "You took a neighbouring row of the left factor or column of the right one: entry (i, j) "
        "uses row i and column j.",
        _contraction,
        _neighbour,
        rank=6,
    ),
    Mistake(
        "no_bias",
        "the bias left out",
        "You did not add the bias to the sum of products.",
        lambda e: _product(e) and e.step.bias is not None,
        _no_bias,
        rank=1,
    ),
    Mistake(
        "sign_of_a_term",
        "the sign of one product flipped",
        "One product of your sum has the wrong sign: a minus sign was lost or added.",
        _contraction,
        _sign_of_a_term,
        rank=4,
        told="the first product's sign flipped",
    ),
    Mistake(
        "rounded_products",
        "every product rounded",
        "You rounded each product before adding; the rules round only the sum, once.",
        _contraction,
        _rounded_products,
        rank=3,
        rounding=True,
    ),
    Mistake(
        "no_scaling",
        "the scaling left out",
        "You did not multiply by 1/√d_k.",
        _is("scale_mask", "scale"),
        _scaled(lambda s: [1.0]),
        rank=1,
    ),
    Mistake(
        "times_sqrt_dk",
        "multiplied by √d_k",
        "You multiplied by √d_k; the rule divides by it.",
        _is("scale_mask", "scale"),
        _scaled(lambda s: [1 / s]),
        rank=2,
    ),
    Mistake(
        "constant_rounded",
        "√d_k or 1/√d_k rounded to 4 digits",
        "You rounded √d_k (to 1.414 for d_k = 2) or 1/√d_k before using it; use the 8-digit "
        "constant the page prints.",
        _is("scale_mask", "scale"),
        _scaled(_rounded_constant),
        rank=3,
    ),
    Mistake(
        "no_mask",
        "the mask not applied",
        "You kept the masked positions (later tokens) in the softmax; their weights are 0.",
        lambda e: _softmax(e) and not e.part,
        _no_mask,
        rank=1,
    ),
    Mistake(
        "softmax_columns",
        "softmax over columns",
        "You took the softmax down each column; it normalises each row.",
        lambda e: _softmax(e) and not e.part,
        _over_columns,
        rank=2,
    ),
    Mistake(
        "softmax_no_exp",
        "softmax without exponentials",
        "You divided each score by the row's sum of scores; the softmax divides exponentials by "
        "their sum.",
        lambda e: _softmax(e) and not e.part,
        _no_exponentials,
        rank=3,
    ),
    Mistake(
        "sum_of_another_row",
        "a sum from another row",
        "You divided by the sum of exponentials of another row.",
        lambda e: _softmax(e) and not e.part,
        _sum_of_another_row,
        rank=4,
    ),
    Mistake(
        "no_max_shift",
        "exponentials without subtracting the maximum",
        "You took the exponentials without subtracting the row's maximum: allowed, since the "
        "probabilities are the same, though they may differ from the key in the last digit.",
        lambda e: _softmax(e) and e.part.startswith("e"),
        _no_max_shift,
        acceptable=True,
    ),
    Mistake(
        "gelu_erf",
        "GELU with erf",
        "You computed GELU with the error function; the rules use its tanh form.",
        _is("gelu"),
        _formula_variant(_gelu_like("gelu_erf", _gelu_erf)),
        rank=3,
    ),
    Mistake(
        "relu",
        "ReLU instead of GELU",
        "You applied ReLU, max(0, x), instead of GELU.",
        _is("gelu"),
        _formula_variant(_gelu_like("relu", _relu)),
        rank=2,
    ),
    Mistake(
        "gelu_no_cubic",
        "GELU without the 0.044715 x³ term",
        "You left the cubic term 0.044715 x³ out of u.",
        lambda e: _formula(e) == "gelu" and e.part in ("", "u"),
        _formula_variant(_gelu_like("gelu_no_cubic", _gelu_no_cubic)),
        rank=1,
    ),
    Mistake(
        "sample_variance",
        "sample variance (n − 1)",
        "You divided by n − 1; LayerNorm's variance divides by n.",
        lambda e: isinstance(e.step, RowWise) and e.step.kind == "var",
        _sample_variance,
        rank=1,
    ),
    Mistake(
        "no_eps",
        "ε left out",
        "You took σ as √σ², without adding ε under the root.",
        _is("normalize", "ln_backward_fast"),
        _no_eps,
        rank=1,
    ),
    Mistake(
        "by_variance",
        "σ² used for σ",
        "You divided by σ² + ε instead of by its square root σ.",
        _is("normalize", "ln_backward_fast"),
        _by_variance,
        rank=2,
    ),
    Mistake(
        "gradient_sign",
        "the gradient's sign flipped",
        "Your gradient has the opposite sign: check the minus signs along the chain rule.",
        _gradient,
        _negated,
        rank=4,
    ),
    Mistake(
        "no_mean",
        "the 1/(T − 1) of the mean left out",
        "You left out the 1/(T − 1): the loss is a mean over T − 1 positions.",
        lambda e: (
            _is("ce_backward", "probs_backward")(e)
            or (isinstance(e.step, RowWise) and e.step.kind == "mean_loss")
        ),
        _no_mean,
        rank=1,
    ),
    Mistake(
        "jacobian_diagonal",
        "only the Jacobian's diagonal",
        "You used only the Jacobian's diagonal; every entry of its column contributes.",
        lambda e: _contraction(e) and e.step.kind == "jacobian",
        _jacobian_diagonal,
        rank=1,
    ),
    Mistake(
        "no_bias_correction",
        "AdamW without bias correction",
        "You used m and v without dividing them by 1 − β₁ᵗ and 1 − β₂ᵗ.",
        _adam("m_hat", "v_hat", "updated"),
        _no_bias_correction,
        rank=1,
    ),
    Mistake(
        "l2_decay",
        "weight decay added to the gradient",
        "You added the weight decay to the gradient (L2); AdamW applies it to θ directly.",
        _adam("m", "v", "m_hat", "v_hat", "updated"),
        _l2,
        rank=3,
    ),
    Mistake(
        "sgd_update",
        "η·g for the update",
        "You stepped by η·g (plain gradient descent); AdamW divides m̂ by √v̂ + ϵ.",
        _adam("updated"),
        _sgd,
        rank=2,
    ),
    Mistake(
        "unrounded",
        "earlier values kept unrounded",
        "You kept the calculator's unrounded values instead of the ones you wrote; the rules "
        "go on from each value as written, rounded.",
        lambda e: not e.part,
        _unrounded,
        rank=7,
        rounding=True,
    ),
    Mistake(
        "truncated",
        "truncated instead of rounded",
        "You cut the last digit off instead of rounding it (a dropped 5 or more rounds up).",
        _any,
        _truncated,
        rank=7,
        rounding=True,
    ),
    Mistake(
        "fewer_digits",
        "rounded to fewer digits",
        "You rounded to fewer significant digits than the rules ask.",
        _any,
        _fewer_digits,
        rank=8,
        fewer_digits=True,
        rounding=True,
    ),
)

BY_KEY = {m.key: m for m in CATALOGUE}


def applicable(e: Entry) -> list[Mistake]:
    return [m for m in CATALOGUE if m.applies(e)]


def diagnosis(e: Entry, right: Inputs, most: int = 3) -> list[tuple[Mistake, Decimal]]:
    """The values the entry takes under the mistakes most likely there, from the right
    inputs: what a key prints beside the right value, so a teacher recognises a mistake at a
    glance. Slips of rounding are left out: they change a last digit, not the method."""
    want = right.evaluate(e.step, e)
    if want is None:
        return []
    want = sig(want, right.r.digits)
    seen = {want}
    out = []
    for m in sorted(applicable(e), key=lambda m: m.rank):
        if m.acceptable or m.rounding or m.key in UNTOLD:
            continue
        with localcontext(hand.CONTEXT):
            try:
                values = [v for v in m.values(e, right) if v is not None and v.is_finite()]
            except (IndexError, KeyError, ValueError, ArithmeticError):
                values = []
        value = next(
            (sig(v, right.r.digits) for v in values if sig(v, right.r.digits) not in seen), None
        )
        if value is not None:
            seen.add(value)
            out.append((m, value))
        if len(out) == most:
            break
    return out


# Left out of a key's diagnosis, beside the slips of rounding (a last digit, not the method):
# a neighbouring cell's value is in the same table already.
UNTOLD = {"neighbour"}
