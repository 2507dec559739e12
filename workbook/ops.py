"""The mathematics of one training step, each operation's forward beside its derivative.

Everything here is plain NumPy on float64 arrays. Element-wise formulas live in
`FORMULAS`: one function per formula, used both to compute a whole tensor and to
re-evaluate a single element for display, so the page and the numbers cannot drift.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
GELU_C = 0.044715
GELU_DC = 3 * GELU_C  # the cubic term's coefficient after differentiating


# --- GELU, tanh approximation --------------------------------------------------------
def gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + np.tanh(SQRT_2_OVER_PI * (x + GELU_C * x**3)))


def gelu_grad(x: np.ndarray) -> np.ndarray:
    """d GELU / dx of the tanh approximation (not of the exact erf GELU)."""
    u = SQRT_2_OVER_PI * (x + GELU_C * x**3)
    t = np.tanh(u)
    du = SQRT_2_OVER_PI * (1.0 + GELU_DC * x**2)
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t**2) * du


# --- softmax --------------------------------------------------------------------------
def softmax_rows(s: np.ndarray) -> np.ndarray:
    """Row-wise softmax; -inf entries (masked) get probability 0."""
    shifted = s - s.max(axis=1, keepdims=True)
    e = np.exp(shifted)
    return e / e.sum(axis=1, keepdims=True)


def softmax_parts(row: np.ndarray) -> tuple[float, dict[int, float], float]:
    """One row worked by hand: its maximum, exp(s_j − max) for unmasked j, and their sum."""
    live = [j for j in range(row.size) if np.isfinite(row[j])]
    top = float(max(row[j] for j in live))
    exps = {j: math.exp(float(row[j]) - top) for j in live}
    return top, exps, math.fsum(exps.values())


def softmax_jacobian(a: np.ndarray) -> np.ndarray:
    """J[k, j] = d a_k / d s_j = a_k (δ_kj − a_j) for one row of probabilities."""
    return np.diag(a) - np.outer(a, a)


# --- LayerNorm ------------------------------------------------------------------------
def layernorm_jacobian(x_hat: np.ndarray, var: float, eps: float) -> np.ndarray:
    """J[j, k] = d x̂_j / d x_k = (δ_jk − 1/n − x̂_j x̂_k / n) / σ for one row.

    Population variance (divide by n) with eps inside the square root, as in the forward.
    """
    n = x_hat.shape[0]
    sigma = math.sqrt(var + eps)
    return (np.eye(n) - 1.0 / n - np.outer(x_hat, x_hat) / n) / sigma


JACOBIANS = {"layernorm": layernorm_jacobian, "softmax": softmax_jacobian}


# --- element-wise formulas ------------------------------------------------------------
# Each takes its operands' values (arrays or scalars, broadcast together) and the step's
# constants; the renderer has a matching symbolic form keyed by the same name.
Formula = Callable[..., np.ndarray]

FORMULAS: dict[str, Formula] = {
    "embed": lambda e_tok, e_pos: e_tok + e_pos,
    "scale_mask": lambda s, *, scale, masked: np.where(masked, -np.inf, s * scale),
    "scale": lambda s, *, scale, masked: np.where(masked, 0.0, s * scale),
    "gelu": lambda x: gelu(x),
    "gelu_backward": lambda dy, x: dy * gelu_grad(x),
    "add": lambda a, b: a + b,
    "sum": lambda *xs: sum(xs),
    "copy": lambda a: a + 0.0,
    "normalize": lambda x, mean, var, *, eps: (x - mean) / np.sqrt(var + eps),
    "affine": lambda x_hat, gamma, beta: gamma * x_hat + beta,
    "mul": lambda a, b: a * b,
    "nll": lambda p: -np.log(p),
    # softmax + mean cross-entropy, fused: (p − y) / (T − 1), zero where nothing is predicted
    "ce_backward": lambda p, *, target, weight, count: weight * (p - target),
    "probs_backward": lambda p, *, target, weight, count: np.where(target > 0, -weight / p, 0.0),
    "ln_backward_fast": lambda dh, dh_mean, xh, dhx_mean, var, *, eps: (
        (dh - dh_mean - xh * dhx_mean) / np.sqrt(var + eps)
    ),
    "softmax_backward_fast": lambda a, da, s: a * (da - s),
    "adam_m": lambda g, *, beta1: (1.0 - beta1) * g,
    "adam_v": lambda g, *, beta2: (1.0 - beta2) * g * g,
    "adam_m_hat": lambda m, *, beta1, t: m / (1.0 - beta1**t),
    "adam_v_hat": lambda v, *, beta2, t: v / (1.0 - beta2**t),
    "adam_update": lambda theta, m_hat, v_hat, *, lr, weight_decay, eps: (
        theta * (1.0 - lr * weight_decay) - lr * m_hat / (np.sqrt(v_hat) + eps)
    ),
}
