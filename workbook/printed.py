"""What is printed: every value of the trace as the page shows it.

Two arithmetics, one interface. Under "hand" (the default) the printed chain is itself a hand
calculation: each step is redone from the *printed* values of its inputs with the rules of
`hand` (exact decimal arithmetic, each written value rounded half up to `digits` significant
digits), and that printed value is what every later step uses. So every printed line re-checks
exactly on a calculator. Under "exact" the values are the float64 trace's, rounded only for
display. Either way the trace is not touched: this is a view of it, step by step.

A printed matrix carries one power-of-ten factor (`Num.exp`) when its entries are small or
large, so its cells are plain decimals.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Context, Decimal, localcontext
from typing import Any

import numpy as np

from . import hand
from .hand import ZERO, Rounder, dec, sig
from .trace import Contraction, Elementwise, Gather, Index, RowWise, Step, Trace

ARITHMETICS = ("hand", "exact")
DIGITS = range(3, 9)  # significant digits a user may ask for
CALCULATOR = Context(prec=10, Emax=10**6, Emin=-(10**6))  # a 10-digit pocket calculator

Values = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Num:
    """A printed number: `value` (true units, already rounded) shown as cell × 10^exp."""

    value: Decimal
    exp: int = 0

    @functools.cached_property
    def cell(self) -> str:
        # cached: a table's widths, its check and its print each read every cell
        if self.value.is_infinite():
            return r"-\infty" if self.value < 0 else r"\infty"
        if self.value == 0:
            return "0"
        return format(self.value.scaleb(-self.exp), "f")


def factor_exp(values: list[Decimal], digits: int) -> int:
    """The power of ten a table of these (printed) values is written in: 0 for entries of
    usual size, else that of the largest entry, so cells read 1.234 rather than 0.00001234,
    and 1.22 rather than 1220 (whose zero would look significant)."""
    finite = [abs(v) for v in values if v.is_finite() and v != 0]
    if not finite:
        return 0
    top = max(finite)
    return 0 if Decimal("0.01") <= top < 10 ** (digits - 1) else top.adjusted()


def _obj(shape: tuple[int, ...]) -> np.ndarray:
    return np.empty(shape, dtype=object)


def _map(fn: Callable[[Any], Any], a: np.ndarray) -> np.ndarray:
    """`fn` of every entry, into an object array of the same shape."""
    out = _obj(np.shape(a))
    for idx in np.ndindex(out.shape):
        out[idx] = fn(a[idx])
    return out


def _decimals(a: np.ndarray) -> np.ndarray:
    return _map(lambda x: dec(float(x)), np.asarray(a))


def _fsum(xs) -> Decimal:
    return sum(xs, ZERO)


@dataclass
class Evaluation:
    """One step redone: its values, what its lines write on the way, its Jacobians."""

    result: np.ndarray
    parts: dict[Index, hand.Parts]
    jacobians: list[np.ndarray]


def evaluate(
    step: Step, values: Values, r: Rounder, jacobians: list[np.ndarray] | None = None
) -> Evaluation:
    """Redo `step` from `values` (object arrays of Decimal), writing values through `r`.

    `jacobians`: the Jacobian entries to use, when they are given rather than formed.
    """
    out = _obj(step.shape)
    parts: dict[Index, hand.Parts] = {}
    if isinstance(step, Contraction) and step.kind == "jacobian":
        jacobians = jacobians or _jacobians(step, values, r)
    if isinstance(step, RowWise) and step.kind == "softmax":
        for i in range(step.shape[0]):
            probs, parts[(i,)] = hand.softmax_row(list(step.row(values, (i, 0))), r)
            out[i] = probs
        return Evaluation(out, parts, [])
    for idx in np.ndindex(step.shape):
        out[idx], p = element(step, values, idx, r, jacobians)
        if p:
            parts[idx] = p
    return Evaluation(out, parts, jacobians or [])


def element(
    step: Step,
    values: Values,
    idx: Index,
    r: Rounder,
    jacobians: list[np.ndarray] | None = None,
    own: hand.Parts | None = None,
) -> tuple[Decimal, hand.Parts]:
    """One entry of `step` redone from `values` by the rules, with what its line writes on
    the way; `own`: values a learner wrote on the way, used instead of recomputing them (a
    softmax row's max, e_j and sum; GELU's u and tanh u)."""
    if isinstance(step, Contraction):
        if step.kind == "jacobian" and jacobians is None:
            jacobians = _jacobians(step, values, r, rows=[idx[0]])
        return r(_contract(step, values, idx, jacobians)), {}
    if isinstance(step, Elementwise):
        return step.formula.hand(step.raw_inputs(values, idx), step.constants(idx), r, own)
    if isinstance(step, RowWise) and step.kind == "softmax":
        probs, parts = hand.softmax_row(list(step.row(values, idx)), r, own)
        return probs[idx[1]], parts
    if isinstance(step, RowWise):
        return r(_reduce(step, values, idx)), {}
    if isinstance(step, Gather):
        src = [values[n][k] for n, k in step.sources(values, idx)]
        return (src[0] if len(src) == 1 else r(_fsum(src))), {}  # a copy is not rewritten
    raise TypeError(step)


def _jacobians(
    step: Contraction, values: Values, r: Rounder, rows: list[int] | None = None
) -> list[np.ndarray]:
    """J_i for every row i (or only `rows`; the others None), each entry written."""
    inputs = [values[n] for n in step.operands[1:]]
    form = hand.JACOBIANS[step.jacobian_of]
    out: list = [None] * step.shape[0]
    for i in range(step.shape[0]) if rows is None else rows:
        row = [list(x[i]) if x.ndim == 2 else x[i] for x in inputs]
        out[i] = np.array(form(*row, **step.jacobian_consts, r=r), dtype=object)
    return out


def _contract(step: Contraction, values: Values, idx: Index, jac: list | None) -> Decimal:
    if step.kind == "jacobian":
        i, j = idx
        a, b = values[step.operands[0]][i], jac[i][:, j]
    elif step.kind == "colsum":
        return _fsum(values[step.operands[0]][:, idx[0]])
    else:
        a, b = step.factors(values, idx)
    total = _fsum(x * y for x, y in zip(a, b, strict=True))
    return total if step.bias is None else total + values[step.bias][idx[-1]]


def _reduce(step: RowWise, values: Values, idx: Index) -> Decimal:
    row = list(step.row(values, idx))
    if step.kind == "mean":
        return _fsum(row) / len(row)
    if step.kind == "sum":
        return _fsum(row)
    if step.kind == "var":
        mu = values[step.operands[1]][idx[0]]
        return _fsum((x - mu) ** 2 for x in row) / len(row)
    if step.kind == "mean_loss":
        return _fsum(row[: step.count]) / step.count
    raise ValueError(step.kind)


class UnprintableError(ValueError):
    """Settings whose numbers the hand chain cannot carry (it overflows where float64 does
    not); the message names what happened."""


class Book:
    """The printed values of a trace, under one arithmetic and number of digits."""

    def __init__(
        self, t: Trace, digits: int = 4, arithmetic: str = "hand", upto: int | None = None
    ) -> None:
        """`upto`: the last chapter a document prints; later steps are not redone (a
        handout of the forward pass needs no AdamW)."""
        self.t, self.digits, self.arithmetic = t, digits, arithmetic
        self.hand = arithmetic == "hand"
        self.r = Rounder(digits, self.hand)
        self.values: dict[str, np.ndarray] = {}
        self.parts: dict[str, dict[Index, hand.Parts]] = {}
        self.jacobians: dict[str, list[np.ndarray]] = {}
        self._nums: dict[object, np.ndarray] = {}
        with localcontext(hand.CONTEXT):
            for name, value in t.values.items():
                if t.producer(name) is None:  # a parameter: its printed value starts the chain
                    self.values[name] = _map(self.r, _decimals(value))
            for step in t.steps:
                if upto is not None and step.chapter > upto:
                    break
                ev = evaluate(step, self.values, self.r)
                _check_finite(step, ev.result)
                self.values[step.name] = ev.result if self.hand else _decimals(step.result)
                self.parts[step.name] = ev.parts
                self.jacobians[step.name] = ev.jacobians if self.hand else self._given_jac(step)
        self.exps = {n: factor_exp(list(self.shown(n).ravel()), digits) for n in self.values}

    def _given_jac(self, step: Step) -> list[np.ndarray]:
        if not (isinstance(step, Contraction) and step.kind == "jacobian"):
            return []
        return [_decimals(j) for j in step.jacobians]

    # --- what a page shows -------------------------------------------------------------
    def shown(self, name: str) -> np.ndarray:
        """The values of `name` as printed (rounded to `digits`); computed once, then shared,
        so not to be changed."""
        if self.hand:  # every value of the hand chain is written, so rounded, already
            return self.values[name]
        if ("shown", name) not in self._nums:
            self._nums[("shown", name)] = _map(lambda x: sig(x, self.digits), self.values[name])
        return self._nums[("shown", name)]

    def num(self, name: str, idx: Index = ()) -> Num:
        return Num(sig(self.values[name][idx], self.digits), self.exps[name])

    def nums(self, name: str) -> np.ndarray:
        """Every entry of `name` as printed (computed once, then shared)."""
        if name not in self._nums:
            self._nums[name] = _map(lambda v: Num(v, self.exps[name]), self.shown(name))
        return self._nums[name]

    def part(self, name: str, idx: Index, key: str) -> Num:
        """An intermediate value a line writes (u, tanh u, an exponential, a row sum)."""
        return single(self.parts[name][idx][key], self.digits)

    def part_table(self, step: Step, key: str, per_row: bool) -> np.ndarray:
        """One intermediate value a step writes, over all its entries (or one per row, for a
        value its whole row shares), as a printed table with its own power of ten; None
        where the entry writes no such value (a masked exponential, a zero row)."""
        parts = self.parts[step.name]
        if per_row:
            rows = step.shape[0]
            values = [self._row_part(parts, i, key) for i in range(rows)]
            shape: tuple[int, ...] = (rows,)
        else:
            shape = step.shape
            values = [self._entry_part(parts, idx, key) for idx in np.ndindex(shape)]
        shown = [None if v is None else sig(v, self.digits) for v in values]
        exp = factor_exp([v for v in shown if v is not None], self.digits)
        out = _obj(shape)
        for k, idx in enumerate(np.ndindex(shape)):
            out[idx] = None if shown[k] is None else Num(shown[k], exp)
        return out

    @staticmethod
    def _row_part(parts: dict, i: int, key: str) -> Decimal | None:
        if (i,) in parts:
            return parts[(i,)].get(key)
        return next((p[key] for idx, p in parts.items() if idx[0] == i and key in p), None)

    @staticmethod
    def _entry_part(parts: dict, idx: Index, key: str) -> Decimal | None:
        if idx in parts:
            return parts[idx].get(key)
        row = parts.get(idx[:1], {})  # a softmax writes e_j per row: key "e" → "e{j}"
        return row.get(f"{key}{idx[-1]}")

    def inputs(self, step: Elementwise, idx: Index) -> list[Num]:
        """The operands of one element, each as its table prints it."""
        pick = {"ij": idx, "i": idx[:1], "j": idx[-1:], "": ()}
        return [self.num(n, pick[how]) for n, how in zip(step.operands, step.align, strict=True)]

    def jacobian(self, name: str, i: int) -> np.ndarray:
        """J^(i) of a Jacobian step as printed: Nums with the table's own factor."""
        if (name, i) not in self._nums:
            self._nums[(name, i)] = self._jacobian(name, i)
        return self._nums[(name, i)]

    def _jacobian(self, name: str, i: int) -> np.ndarray:
        shown = self.jacobian_values(name, i)
        exp = factor_exp(list(shown.ravel()), self.digits)
        return _map(lambda v: Num(v, exp), shown)

    # --- how far the hand chain is from the exact one ---------------------------------
    def drift(self, step: Step) -> float:
        """Largest |printed chain − exact| over the step's entries, relative to the largest
        exact entry of the same result (0 when the result is all zero)."""
        exact = np.asarray(step.result, dtype=np.float64)
        finite = np.isfinite(exact)
        top = float(np.max(np.abs(exact[finite]), initial=0.0))
        if top == 0:
            return 0.0
        diffs = [
            abs(float(self.values[step.name][idx]) - float(exact[idx]))
            for idx in np.ndindex(exact.shape)
            if finite[idx]
        ]
        return max(diffs, default=0.0) / top

    def entry_drift(self, step: Step) -> tuple[float, Index] | None:
        """The entry whose printed chain value is farthest from its exact value, measured by
        that entry's own size: (|printed − exact| / |exact|, index); None when every exact
        entry is 0 or masked. Small entries, sums whose terms cancel, drift the most."""
        exact = np.asarray(step.result, dtype=np.float64)
        worst: tuple[float, Index] | None = None
        for idx in np.ndindex(exact.shape):
            e = float(exact[idx])
            if not math.isfinite(e) or e == 0:
                continue
            share = abs(float(self.values[step.name][idx]) - e) / abs(e)
            if worst is None or share > worst[0]:
                worst = (share, idx)
        return worst

    # --- how far a careful learner may land from the key -------------------------------
    def tolerance(self, step: Step) -> int:
        """In units of the last printed digit of each value.

        Hand arithmetic: the key is what the rules give; a learner differs only where a
        10-digit calculator rounds an intermediate differently from exact arithmetic, so the
        step is redone on such a calculator from the printed inputs and the difference
        measured. Exact arithmetic: the step is redone by the rules from the printed
        (rounded) inputs and Jacobian entries, and compared with the exact values.
        """
        printed = {n: self.shown(n) for n in step.operands}
        r = Rounder(self.digits, True)
        if self.hand:
            with localcontext(CALCULATOR):
                ev = evaluate(step, printed, r)
        else:
            given = [
                self.jacobian_values(step.name, i) for i in range(len(self.jacobians[step.name]))
            ]
            with localcontext(hand.CONTEXT):
                ev = evaluate(step, printed, r, given or None)
        worst = 0
        for idx in np.ndindex(step.shape):
            key = sig(self.values[step.name][idx], self.digits)
            if key.is_finite() and key != 0:
                unit = Decimal(1).scaleb(key.adjusted() - self.digits + 1)
                worst = max(worst, math.ceil(abs(ev.result[idx] - key) / unit))
            elif key == 0 and ev.result[idx] != 0 and ev.result[idx].is_finite():
                worst = max(worst, 1)
        return worst

    def admits_zero(self, step: Step) -> bool:
        """Would the answer's tolerance accept 0 for one of its non-zero entries?"""
        units = self.tolerance(step)
        for idx in np.ndindex(step.shape):
            v = sig(self.values[step.name][idx], self.digits)
            nonzero = v.is_finite() and v != 0
            if nonzero and units * Decimal(1).scaleb(v.adjusted() - self.digits + 1) >= abs(v):
                return True
        return False

    def agreement(self, name: str, other: str) -> int:
        """How far two printed results of the same shape are apart, at most, in units of the
        last printed digit of `other`'s entries (0: digit for digit)."""
        worst = 0
        for idx in np.ndindex(self.values[other].shape):
            a, b = (
                sig(self.values[name][idx], self.digits),
                sig(self.values[other][idx], self.digits),
            )
            if a.is_finite() and b.is_finite() and a != b:
                ref = b if b != 0 else a
                unit = Decimal(1).scaleb(ref.adjusted() - self.digits + 1)
                worst = max(worst, math.ceil(abs(a - b) / unit))
        return worst

    def jacobian_values(self, name: str, i: int) -> np.ndarray:
        """J_i's entries as printed (rounded to `digits`)."""
        return _map(lambda x: sig(x, self.digits), self.jacobians[name][i])


def check_answers(t: Trace, digits: int, arithmetic: str) -> None:
    """Refuse settings whose answer key would accept 0 for a non-zero answer: under exact
    arithmetic, rounding the printed inputs can change a small result entirely. The remedy
    is more digits, and the message names how many."""
    if arithmetic == "hand":
        return  # the key is what the rules give; measured tolerances are 0 or 1

    def failing(d: int) -> list[str]:
        book = Book(t, d, arithmetic)
        return [s.name for s in t.steps if book.admits_zero(s)]

    first = failing(digits)
    if not first:
        return
    enough = next((d for d in DIGITS if d > digits and not failing(d)), None)
    remedy = f"use --digits {enough} or more" if enough else "use fewer, larger numbers"
    raise UnprintableError(
        f"--arithmetic {arithmetic} with --digits {digits}: rounding the printed inputs can "
        f"change {len(first)} answer(s) entirely (e.g. {first[0]}), so the key could not "
        f"tell them from 0; {remedy}, or --arithmetic hand"
    )


def _check_finite(step: Step, hand_values: np.ndarray) -> None:
    finite = np.isfinite(np.asarray(step.result, dtype=np.float64))
    for idx in np.ndindex(finite.shape):
        if finite[idx] and not hand_values[idx].is_finite():
            raise UnprintableError(
                f"{step.name} is finite but becomes {hand_values[idx]} in hand arithmetic "
                "(a probability written as 0 below 1e-99): use a smaller --init-scale, "
                "or --arithmetic exact"
            )


def single(value: Decimal, digits: int) -> Num:
    """A number printed on its own: a power of ten only when it is small or large."""
    v = sig(value, digits)
    return Num(v, factor_exp([v], digits))
