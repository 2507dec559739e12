"""How far a careful learner's answer may be from the key.

A learner computes from the *printed*, rounded operands, not from the engine's float64 values.
For each step we redo every element from the rounded operands with the step's own formula
(`Step.element`) and take the worst distance from the exact result, rounded up to whole units
of the last printed digit, never below one: with fixed decimals one unit is 10^-decimals for
every value; with significant digits (the AdamW chapter) each value has its own unit.
"""

from __future__ import annotations

import math
from collections import ChainMap
from dataclasses import dataclass

import numpy as np

from ..trace import Step, Trace
from .fmt import NumberFormat


@dataclass(frozen=True)
class Tolerance:
    units: int  # in the last printed digit of each value
    fixed: float | None  # one unit, when every value of the answer is printed to fixed decimals

    def tex(self, f: NumberFormat) -> str:
        if self.fixed is not None:
            return rf"\pm {self.units * self.fixed:.{f.decimals}f}"
        return rf"\pm {self.units}\text{{ in the last digit}}"


def printed(values: np.ndarray, f: NumberFormat) -> np.ndarray:
    """The values as a reader sees them on the page."""
    return np.vectorize(f.rounded, otypes=[np.float64])(values) if values.size else values


def tolerance(step: Step, t: Trace, f: NumberFormat) -> Tolerance:
    """The ± to print beside the answer to `step`."""
    rounded = {n: printed(np.asarray(t[n], dtype=np.float64), f) for n in step.operands}
    values = ChainMap(rounded, t.values)
    fixed = None if f.significant else 10.0**-f.decimals
    worst = 0.0
    for idx in np.ndindex(step.shape):
        exact = float(step.result[idx])
        if math.isfinite(exact):
            unit = fixed or f.unit(exact)
            worst = max(worst, abs(step.element(values, idx) - exact) / unit)
    return Tolerance(max(1, math.ceil(worst - 1e-9)), fixed)
