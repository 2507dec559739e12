"""Hand arithmetic: the rules a learner follows, in exact decimal arithmetic.

A value written on the page has `digits` significant digits, rounded half up (a 5 rounds away
from zero). Every written value is computed from written values only: products and sums
exactly, exp, ln, tanh and √ as the function of the written input, and the result rounded
once, when it is written. Intermediate values that a line writes down (the u of GELU, the
exponentials of a softmax) are rounded too, and the rest of the line uses them as written.

The element-wise formulas themselves are in `formulas`, each beside its float64 form; they
return the value with the intermediates the page prints. `Rounder` decides what "written"
means: rounded (hand arithmetic) or unrounded (the exact chain, rounded only for display).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal

from . import ops

PREC = 150  # working digits: sums and products stay exact even across 100 orders of size
CONTEXT = Context(prec=PREC, Emax=10**6, Emin=-(10**6))
CONST_DIGITS = 8  # derived constants (1/√d_k, √(2/π)) are printed, and used, to 8 digits

ZERO, ONE, HALF = Decimal(0), Decimal(1), Decimal("0.5")
NEG_INF = Decimal("-Infinity")


def sig(x: Decimal, digits: int) -> Decimal:
    """x rounded half up (away from zero) to `digits` significant digits."""
    if not x.is_finite() or x == 0:
        return x if x != 0 else ZERO
    places = x.adjusted() - digits + 1
    # the unit as a literal decimal and the context passed in: no context switch per call
    r = x.quantize(Decimal((0, (1,), places)), rounding=ROUND_HALF_UP, context=CONTEXT)
    if r.adjusted() > x.adjusted():  # 9.9996 → 10.00: one digit too many
        r = r.quantize(Decimal((0, (1,), places + 1)), rounding=ROUND_HALF_UP, context=CONTEXT)
    return r


def dec(x: float) -> Decimal:
    """A float's exact value (for the exact chain and parameters)."""
    if math.isinf(x):
        return NEG_INF if x < 0 else Decimal("Infinity")
    return Decimal(x)


def config_const(x: float) -> Decimal:
    """A configuration constant as the user typed it: 0.9, not 0.90000000000000002220."""
    return Decimal(repr(float(x)))


def derived_const(x: float) -> Decimal:
    """A constant the model derives (1/√8, √(2/π)): printed and used to CONST_DIGITS."""
    return sig(Decimal(x), CONST_DIGITS)


SQRT_2_OVER_PI = derived_const(ops.SQRT_2_OVER_PI)
GELU_C = Decimal(repr(ops.GELU_C))
GELU_DC = 3 * GELU_C


UNDERFLOW = Decimal("1E-99")  # smaller results are written as 0, as a calculator shows them


@dataclass(frozen=True)
class Rounder:
    """What writing a value does to it: `digits` significant digits, or nothing (exact)."""

    digits: int
    hand: bool = True

    def __call__(self, x: Decimal) -> Decimal:
        if not self.hand:
            return x
        return ZERO if x.is_finite() and abs(x) < UNDERFLOW else sig(x, self.digits)


def tanh(u: Decimal) -> Decimal:
    if abs(u) > 50:  # tanh is ±1 to 43 digits: rounded to at most 8 it is ±1 exactly
        return ONE.copy_sign(u)
    e = (2 * u).exp()
    return (e - 1) / (e + 1)


# --- pieces the formulas (formulas.py) and the Jacobians share ------------------------------
Parts = dict[str, Decimal]


def written(own: Parts | None, key: str, compute: Callable[[], Decimal]) -> Decimal:
    """A value a line writes on the way: the one a learner wrote (`own`, to follow their
    chain on from their own numbers) where given, else computed by the rules."""
    return own[key] if own and key in own else compute()


def gelu_u(x: Decimal, r: Rounder) -> Decimal:
    return r(SQRT_2_OVER_PI * (x + GELU_C * x**3))


def sigma(var: Decimal, eps: float, r: Rounder) -> Decimal:
    """σ = √(σ² + ε) of a row, written once and used by x̂, its Jacobian and the fast formula."""
    return r((var + config_const(eps)).sqrt())


# --- rows ---------------------------------------------------------------------------------
def softmax_row(
    row: list[Decimal], r: Rounder, own: Parts | None = None
) -> tuple[list[Decimal], Parts]:
    """max, e_j = exp(s_j − max) for the unmasked j, their sum, and p_j = e_j / sum; each
    written value a learner's own where `own` has it."""
    live = [j for j, s in enumerate(row) if s.is_finite()]
    top = written(own, "max", lambda: max(row[j] for j in live))
    exps = {j: written(own, f"e{j}", lambda j=j: r((row[j] - top).exp())) for j in live}
    total = written(own, "sum", lambda: r(sum(exps.values(), ZERO)))
    probs = [r(exps[j] / total) if j in exps else ZERO for j in range(len(row))]
    parts = {"max": top, "sum": total} | {f"e{j}": e for j, e in exps.items()}
    return probs, parts


# --- Jacobians ----------------------------------------------------------------------------
def layernorm_jacobian(x_hat: list[Decimal], var: Decimal, eps: float, r: Rounder):
    """J[j][k] = (δ_jk − 1/n − x̂_j x̂_k / n) / σ, σ as written, each entry written."""
    n = len(x_hat)
    s = sigma(var, eps, r)
    return [
        [r(((ONE if j == k else ZERO) - ONE / n - x_hat[j] * x_hat[k] / n) / s) for k in range(n)]
        for j in range(n)
    ]


def softmax_jacobian(a: list[Decimal], r: Rounder):
    """J[j][k] = A_j (δ_jk − A_k), each entry written."""
    n = len(a)
    return [[r(a[j] * ((ONE if j == k else ZERO) - a[k])) for k in range(n)] for j in range(n)]


JACOBIANS = {"layernorm": layernorm_jacobian, "softmax": softmax_jacobian}
