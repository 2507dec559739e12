"""How far a careful learner's answer may be from the key.

A learner computes from the *printed*, rounded operands, not from the engine's float64 values.
For each step we redo every element from the rounded operands with the step's own formula
(`Step.element`), take the largest difference from the exact result, and round it up to the
printed precision, never below one unit in the last printed digit.
"""

from __future__ import annotations

import math
from collections import ChainMap

import numpy as np

from .trace import Step, Trace


def printed(values: np.ndarray, decimals: int) -> np.ndarray:
    """The values as a reader sees them: fixed decimals, or significant digits when tiny."""
    out = np.round(values, decimals)
    tiny = (values != 0) & (np.abs(values) < 0.5 * 10.0**-decimals) & np.isfinite(values)
    if tiny.any():
        digits = max(decimals - 1, 0)
        out[tiny] = [float(f"{x:.{digits}e}") for x in values[tiny]]
    return out


def tolerance(step: Step, t: Trace, decimals: int) -> float:
    """The ± to print beside the answer to `step`."""
    rounded = {n: printed(np.asarray(t[n], dtype=np.float64), decimals) for n in step.operands}
    values = ChainMap(rounded, t.values)
    worst = 0.0
    for idx in np.ndindex(step.shape):
        exact = float(step.result[idx])
        if not math.isfinite(exact):
            continue
        worst = max(worst, abs(step.element(values, idx) - exact))
    unit = 10.0**-decimals
    return max(1, math.ceil(worst / unit - 1e-9)) * unit
