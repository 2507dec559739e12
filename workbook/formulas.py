"""Element-wise formulas, each one object: what the engine computes, what a hand calculation
writes, and how the page shows it (handcalcs' rhythm: formula → numbers → result).

`compute` works on float64 arrays (the engine); `hand` redoes one element from written
decimals and returns the intermediates a line writes on the way (the printed chain), taking
any of them a learner wrote instead (`own`: the chain followed on from their numbers);
`general` is the formula in symbols and `substitute` the same formula with the printed
numbers, given a formatter `f` (render.fmt.Fmt) so this module stays free of LaTeX layout.
Because all four live together, the page and the numbers cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import numpy as np

from . import hand, ops
from .hand import HALF, NEG_INF, ZERO, Rounder, config_const, derived_const, written

Parts = dict[str, Decimal]
# (inputs, constants, rounder, the values a learner wrote on the way, if any) → value, parts
HandFormula = Callable[..., tuple[Decimal, Parts]]


@dataclass(frozen=True)
class Formula:
    name: str
    compute: Callable[..., np.ndarray]
    hand: HandFormula
    general: Callable[..., str]
    substitute: Callable[..., str]


def _plain(fn: Callable[..., Decimal]) -> HandFormula:
    """A hand formula with nothing written between its inputs and its value."""
    return lambda xs, c, r, own=None: (r(fn(*xs, **c)), {})


# --- GELU ---------------------------------------------------------------------------------
def _gelu_parts(x: Decimal, r: Rounder, own: Parts | None) -> tuple[Decimal, Decimal]:
    """u and tanh u, written on the way by GELU and reused by GELU′."""
    u = written(own, "u", lambda: hand.gelu_u(x, r))
    return u, written(own, "tanh", lambda: r(hand.tanh(u)))


def _gelu_hand(
    xs: list[Decimal], c: Mapping[str, Any], r: Rounder, own: Parts | None = None
) -> tuple[Decimal, Parts]:
    """GELU writes u and tanh u on the way, as GELU′ does: the same two numbers serve both."""
    (x,) = xs
    u, t = _gelu_parts(x, r, own)
    return r(HALF * x * (1 + t)), {"u": u, "tanh": t}


def _gelu_backward_hand(
    xs: list[Decimal], c: Mapping[str, Any], r: Rounder, own: Parts | None = None
) -> tuple[Decimal, Parts]:
    dy, x = xs
    u, t = _gelu_parts(x, r, own)
    grad = written(
        own,
        "grad",
        lambda: r(
            HALF * (1 + t)
            + HALF * x * (1 - t * t) * hand.SQRT_2_OVER_PI * (1 + hand.GELU_DC * x * x)
        ),
    )
    return r(dy * grad), {"u": u, "tanh": t, "grad": grad}


def _gelu_sub(xs, c, f, parts) -> str:
    x = f.paren(xs[0])
    return (
        rf"0.5\,{x}\bigl(1 + \tanh\bigl({f.const(hand.SQRT_2_OVER_PI)}\,({f(xs[0])} + "
        rf"{f.const(hand.GELU_C)}\,{x}^3)\bigr)\bigr) = 0.5\,{x}\,(1 + \tanh {f.paren(parts['u'])})"
        rf" = 0.5\,{x}\,(1 + {f.paren(parts['tanh'])})"
    )


def _gelu_grad_sub(xs, c, f, parts) -> str:
    dy, x, t = f.paren(xs[0]), f.paren(xs[1]), f.paren(parts["tanh"])
    return (
        rf"{dy}\cdot\bigl[0.5(1 + {t}) + 0.5\,{x}(1 - {t}^2)"
        rf"\,{f.const(hand.SQRT_2_OVER_PI)}\,(1 + {f.const(hand.GELU_DC)}\,{x}^2)\bigr]"
        rf" = {dy}\cdot{f.paren(parts['grad'])}"
    )


# --- scaling and masking --------------------------------------------------------------------
def _masked_hand(value: Decimal) -> Callable[..., Decimal]:
    def fn(s: Decimal, *, scale: float, masked: object) -> Decimal:
        return value if masked else s * derived_const(scale)

    return fn


def _scale_sub(xs, c, f, parts) -> str:
    return rf"{f.paren(xs[0])} \cdot {f.const(derived_const(c['scale']))}"


# --- LayerNorm --------------------------------------------------------------------------------
def _normalize_hand(
    xs: list[Decimal], c: Mapping[str, Any], r: Rounder, own: Parts | None = None
) -> tuple[Decimal, Parts]:
    x, mean, var = xs
    s = written(own, "sigma", lambda: hand.sigma(var, c["eps"], r))
    return r((x - mean) / s), {"sigma": s}


def _ln_backward_fast_hand(
    xs: list[Decimal], c: Mapping[str, Any], r: Rounder, own: Parts | None = None
) -> tuple[Decimal, Parts]:
    dh, dh_mean, xh, dhx_mean, var = xs
    s = written(own, "sigma", lambda: hand.sigma(var, c["eps"], r))
    return r((dh - dh_mean - xh * dhx_mean) / s), {"sigma": s}


def _ln_fast_sub(xs, c, f, parts) -> str:
    top = rf"({f(xs[0])} - {f.paren(xs[1])} - {f.paren(xs[2])}\,{f.paren(xs[3])})"
    return (
        rf"{top} / \sqrt{{{f(xs[4])} + {f.const(c['eps'])}}}"
        rf" = {top} / {f.paren(parts['sigma'])}"
    )


# --- loss ---------------------------------------------------------------------------------------
def _ce_backward_hand(p: Decimal, *, target: float, weight: float, count: int) -> Decimal:
    return ZERO if weight == 0 else (p - config_const(target)) / count


def _probs_backward_hand(p: Decimal, *, target: float, weight: float, count: int) -> Decimal:
    return ZERO if target == 0 else -1 / (count * p)


# --- AdamW --------------------------------------------------------------------------------------
def _adam_update_hand(
    xs: list[Decimal], c: Mapping[str, Any], r: Rounder, own: Parts | None = None
) -> tuple[Decimal, Parts]:
    """θ' writes √v̂ on the way, as a learner does before dividing by it."""
    theta, m_hat, v_hat = xs
    lr, wd, eps = (config_const(c[k]) for k in ("lr", "weight_decay", "eps"))
    root = written(own, "sqrt_v", lambda: r(v_hat.sqrt()))
    return r(theta * (1 - lr * wd) - lr * m_hat / (root + eps)), {"sqrt_v": root}


def _adam_update_sub(xs, c, f, parts) -> str:
    decay = rf"{f(xs[0])}\,(1 - {f.const(c['lr'])}\cdot{f.const(c['weight_decay'])})"
    step = rf"{f.const(c['lr'])}\cdot{f.paren(xs[1])}"
    return (
        rf"{decay} - {step}/(\sqrt{{{f(xs[2])}}} + {f.const(c['eps'])})"
        rf" = {decay} - {step}/({f(parts['sqrt_v'])} + {f.const(c['eps'])})"
    )


_ALL = (
    Formula(
        "embed",
        lambda e_tok, e_pos: e_tok + e_pos,
        _plain(lambda a, b: a + b),
        lambda lhs, a, b: rf"{lhs} = {a} + {b}",
        lambda xs, c, f, p: f.plus(xs),
    ),
    Formula(
        "add",
        lambda a, b: a + b,
        _plain(lambda a, b: a + b),
        lambda lhs, a, b: rf"{lhs} = {a} + {b}",
        lambda xs, c, f, p: f.plus(xs),
    ),
    Formula(
        "sum",
        lambda *xs: sum(xs),
        _plain(lambda *xs: sum(xs, ZERO)),
        lambda lhs, *a: rf"{lhs} = " + " + ".join(a),
        lambda xs, c, f, p: f.plus(xs),
    ),
    Formula(
        "copy",
        lambda a: a + 0.0,
        _plain(lambda a: a),
        lambda lhs, a: rf"{lhs} = {a}",
        lambda xs, c, f, p: f(xs[0]),
    ),
    Formula(
        "mul",
        lambda a, b: a * b,
        _plain(lambda a, b: a * b),
        lambda lhs, a, b: rf"{lhs} = {a}\,{b}",
        lambda xs, c, f, p: rf"{f.paren(xs[0])}\,{f.paren(xs[1])}",
    ),
    Formula(
        "scale_mask",
        lambda s, *, scale, masked: np.where(masked, -np.inf, s * scale),
        _plain(_masked_hand(NEG_INF)),
        lambda lhs, a: (
            rf"{lhs} = {a}/\sqrt{{d_k}}"
            r" \text{ for } j \le i,\ -\infty \text{ (masked) for } j > i"
        ),
        _scale_sub,
    ),
    Formula(
        "scale",
        lambda s, *, scale, masked: np.where(masked, 0.0, s * scale),
        _plain(_masked_hand(ZERO)),
        lambda lhs, a: rf"{lhs} = {a}/\sqrt{{d_k}} \text{{ for }} j \le i,\ 0 \text{{ for }} j > i",
        _scale_sub,
    ),
    Formula(
        "gelu",
        ops.gelu,
        _gelu_hand,
        lambda lhs, x: (
            rf"{lhs} = 0.5\,{x}\bigl(1 + \tanh u\bigr),\ u = \sqrt{{2/\pi}}\,({x} + "
            rf"{hand.GELU_C}\,{x}^3)"
        ),
        _gelu_sub,
    ),
    Formula(
        "gelu_backward",
        lambda dy, x: dy * ops.gelu_grad(x),
        _gelu_backward_hand,
        lambda lhs, dy, x: (
            rf"{lhs} = {dy}\cdot \mathrm{{GELU}}'({x}),\ \ "
            r"\mathrm{GELU}'(x) = \tfrac12(1 + \tanh u) + \tfrac12 x (1 - \tanh^2 u)\sqrt{2/\pi}"
            rf"(1 + {hand.GELU_DC}\, x^2)"
        ),
        _gelu_grad_sub,
    ),
    Formula(
        "normalize",
        lambda x, mean, var, *, eps: (x - mean) / np.sqrt(var + eps),
        _normalize_hand,
        lambda lhs, x, mu, var: rf"{lhs} = ({x} - {mu}) / \sqrt{{{var} + \varepsilon}}",
        lambda xs, c, f, p: (
            rf"({f(xs[0])} - {f.paren(xs[1])}) / \sqrt{{{f(xs[2])} + {f.const(c['eps'])}}}"
            rf" = ({f(xs[0])} - {f.paren(xs[1])}) / {f.paren(p['sigma'])}"
        ),
    ),
    Formula(
        "affine",
        lambda x_hat, gamma, beta: gamma * x_hat + beta,
        _plain(lambda x_hat, gamma, beta: gamma * x_hat + beta),
        lambda lhs, xh, g, b: rf"{lhs} = {g}\,{xh} + {b}",
        lambda xs, c, f, p: rf"{f.paren(xs[1])}\,{f.paren(xs[0])} + {f.paren(xs[2])}",
    ),
    Formula(
        "nll",
        lambda p: -np.log(p),
        _plain(lambda p: -p.ln()),
        lambda lhs, p: rf"{lhs} = -\ln {p}",
        lambda xs, c, f, p: rf"-\ln {f.paren(xs[0])}",
    ),
    # softmax + mean cross-entropy, fused: (p − y) / (T − 1), zero where nothing is predicted
    Formula(
        "ce_backward",
        lambda p, *, target, weight, count: weight * (p - target),
        _plain(_ce_backward_hand),
        lambda lhs, p: rf"{lhs} = ({p} - y_{{i,j}})/(T-1)",
        lambda xs, c, f, p: rf"({f(xs[0])} - {f.const(c['target'])}) / {c['count']}",
    ),
    Formula(
        "probs_backward",
        lambda p, *, target, weight, count: np.where(target > 0, -weight / p, 0.0),
        _plain(_probs_backward_hand),
        lambda lhs, p: rf"{lhs} = -y_{{i,j}} / \bigl((T-1)\,{p}\bigr)",
        lambda xs, c, f, p: rf"-1 / ({c['count']} \cdot {f(xs[0])})",
    ),
    Formula(
        "ln_backward_fast",
        lambda dh, dh_mean, xh, dhx_mean, var, *, eps: (
            (dh - dh_mean - xh * dhx_mean) / np.sqrt(var + eps)
        ),
        _ln_backward_fast_hand,
        lambda lhs, dh, dhm, xh, dhxm, var: (
            rf"{lhs} = ({dh} - {dhm} - {xh}\,{dhxm}) / \sqrt{{{var} + \varepsilon}}"
        ),
        _ln_fast_sub,
    ),
    Formula(
        "softmax_backward_fast",
        lambda a, da, s: a * (da - s),
        _plain(lambda a, da, s: a * (da - s)),
        lambda lhs, a, da, s: rf"{lhs} = {a}\,({da} - {s})",
        lambda xs, c, f, p: rf"{f(xs[0])}\,({f(xs[1])} - {f.paren(xs[2])})",
    ),
    Formula(
        "adam_m",
        lambda g, *, beta1: (1.0 - beta1) * g,
        _plain(lambda g, *, beta1: (1 - config_const(beta1)) * g),
        lambda lhs, g: rf"{lhs} = \beta_1 \cdot 0 + (1 - \beta_1)\,{g}",
        lambda xs, c, f, p: (
            rf"{f.const(c['beta1'])}\cdot 0 + (1 - {f.const(c['beta1'])})\cdot{f.paren(xs[0])}"
        ),
    ),
    Formula(
        "adam_v",
        lambda g, *, beta2: (1.0 - beta2) * g * g,
        _plain(lambda g, *, beta2: (1 - config_const(beta2)) * g * g),
        lambda lhs, g: rf"{lhs} = \beta_2 \cdot 0 + (1 - \beta_2)\,{g}^2",
        lambda xs, c, f, p: (
            rf"{f.const(c['beta2'])}\cdot 0 + (1 - {f.const(c['beta2'])})\cdot{f.paren(xs[0])}^2"
        ),
    ),
    Formula(
        "adam_m_hat",
        lambda m, *, beta1, t: m / (1.0 - beta1**t),
        _plain(lambda m, *, beta1, t: m / (1 - config_const(beta1) ** t)),
        lambda lhs, m: rf"{lhs} = {m} / (1 - \beta_1^t)",
        lambda xs, c, f, p: rf"{f.paren(xs[0])} / (1 - {f.const(c['beta1'])}^{{{c['t']}}})",
    ),
    Formula(
        "adam_v_hat",
        lambda v, *, beta2, t: v / (1.0 - beta2**t),
        _plain(lambda v, *, beta2, t: v / (1 - config_const(beta2) ** t)),
        lambda lhs, v: rf"{lhs} = {v} / (1 - \beta_2^t)",
        lambda xs, c, f, p: rf"{f.paren(xs[0])} / (1 - {f.const(c['beta2'])}^{{{c['t']}}})",
    ),
    Formula(
        "adam_update",
        lambda theta, m_hat, v_hat, *, lr, weight_decay, eps: (
            theta * (1.0 - lr * weight_decay) - lr * m_hat / (np.sqrt(v_hat) + eps)
        ),
        _adam_update_hand,
        lambda lhs, th, mh, vh: (
            rf"{lhs} = {th}\,(1 - \eta\lambda) - \eta\,{mh}/(\sqrt{{{vh}}} + \epsilon)"
        ),
        _adam_update_sub,
    ),
)

FORMULAS: dict[str, Formula] = {f.name: f for f in _ALL}
