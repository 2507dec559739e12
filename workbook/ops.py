"""The mathematics of one training step, each operation's forward beside its derivative.

Everything here is plain NumPy on float64 arrays: GELU and its derivative, the softmax and
the two Jacobians. The element-wise formulas that use them are in `formulas`.
"""

from __future__ import annotations

import math

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
    """J[j, k] = d a_j / d s_k = a_j (δ_jk − a_k) for one row of probabilities: output j,
    input k, as every Jacobian of the book is indexed."""
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
