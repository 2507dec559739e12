"""The trace: an ordered list of steps that describe themselves, the only contract between
numbers and pages.

A step records what it computed (its operands by name, its result), how it is to be shown
(`Desc`: symbol, title, layer, head, role) and can explain any single element of its result:
`Contraction.terms` gives the products that sum to it, `Elementwise.inputs` the scalars a
formula was applied to, `RowWise.row` the row it came from. Every explanation is re-evaluated
by `Step.element` so tests can prove that what the page shows adds up to what the engine
computed. Names are keys only: nothing reads meaning out of them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .formulas import Formula
from .ops import softmax_parts

Index = tuple[int, ...]


@dataclass(frozen=True)
class Desc:
    """How a quantity (a parameter or a step's result) is shown.

    `role` says what kind of quantity it is, whatever its layer or head ("scores",
    "d.scores"): the key of its note and of the rules for writing it. `rows`/`cols` are
    "vocab" where they stand for the vocabulary's words. `causal` marks products whose
    entries above the diagonal the causal mask makes "unneeded" (QKᵀ) or "zero" (dS).
    `of` is the parameter an AdamW result belongs to.
    """

    symbol: str
    title: str = ""  # LaTeX, written by the engine (never user text)
    role: str = ""
    layer: int | None = None
    head: int | None = None
    rows: str = ""
    cols: str = ""
    causal: str = ""
    of: str = ""


@dataclass(frozen=True)
class Chapter:
    """One chapter of the workbook, as the modules that recorded its steps describe it.

    `intro` names the prose template that opens it; `symbols` are the LaTeX symbols the
    prose refers to (the layer's input, for instance), so one template serves every layer.
    """

    number: int
    part: str  # forward | backward | optimizer
    title: str
    intro: str
    layer: int | None = None
    symbols: Mapping[str, Any] = field(default_factory=dict)
    topic: str = ""  # the title without its layer: what every layer's copy shares


@dataclass(frozen=True, eq=False)
class Step:
    """One named result, how it was made and how it is shown."""

    name: str
    chapter: int
    operands: tuple[str, ...]
    result: np.ndarray
    desc: Desc

    @property
    def shape(self) -> tuple[int, ...]:
        return self.result.shape

    def element(self, values: Mapping[str, np.ndarray], idx: Index) -> float:
        """Re-derive result[idx] from this step's own explanation of it."""
        raise NotImplementedError


@dataclass(frozen=True, eq=False)
class Contraction(Step):
    """result[i, j] = Σ_k A[i, k] B[k, j] (+ bias[j]), with A, B optionally transposed.

    Matrix products, Jacobian-vector products and column sums all share this form;
    `kind` tells the renderer which one it is looking at.
    """

    kind: str = "matmul"  # matmul | jacobian | colsum | coldot
    transpose: tuple[bool, bool] = (False, False)
    bias: str | None = None
    jacobians: np.ndarray | None = None  # [rows, n, n] for kind == "jacobian"
    # For a Jacobian product: which Jacobian (a key of hand.JACOBIANS) and its constants. Its
    # inputs are operands[1:], one row each (x̂ and σ², or A), so they are cited and given.
    jacobian_of: str = ""
    jacobian_consts: Mapping[str, Any] = field(default_factory=dict)

    def terms(self, values: Mapping[str, np.ndarray], idx: Index) -> list[tuple[float, float]]:
        """The (a, b) pairs whose products sum to result[idx], in index order."""
        a_row, b_col = self.factors(values, idx)
        return list(zip(a_row.tolist(), b_col.tolist(), strict=True))

    def factors(
        self, values: Mapping[str, np.ndarray], idx: Index
    ) -> tuple[np.ndarray, np.ndarray]:
        """The row of the left factor and the column of the right factor for result[idx]."""
        if self.kind == "jacobian":
            i, j = idx
            return values[self.operands[0]][i], self.jacobians[i][:, j]
        if self.kind == "colsum":
            col = values[self.operands[0]][:, idx[0]]
            return col, np.ones_like(col)
        if self.kind == "coldot":
            return values[self.operands[0]][:, idx[0]], values[self.operands[1]][:, idx[0]]
        a, b = (values[n] for n in self.operands[:2])
        a = a.T if self.transpose[0] else a
        b = b.T if self.transpose[1] else b
        i, j = idx
        return a[i], b[:, j]

    def bias_value(self, values: Mapping[str, np.ndarray], idx: Index) -> float | None:
        return None if self.bias is None else float(values[self.bias][idx[-1]])

    def element(self, values: Mapping[str, np.ndarray], idx: Index) -> float:
        a, b = self.factors(values, idx)
        total = math_fsum(a * b)
        bias = self.bias_value(values, idx)
        return total if bias is None else total + bias


@dataclass(frozen=True, eq=False)
class Elementwise(Step):
    """result[idx] = formula(operand values at idx; constants).

    `align` says how each operand is indexed from a result index: "ij" the same element,
    "i" by row, "j" by column, "" a scalar. Array constants have the result's shape.
    """

    formula: Formula | None = None
    align: tuple[str, ...] = ()
    consts: Mapping[str, Any] = field(default_factory=dict)
    checks: str = ""  # a fast formula: the step whose result it computes again, another way

    def inputs(self, values: Mapping[str, np.ndarray], idx: Index) -> list[float]:
        return [float(x) for x in self.raw_inputs(values, idx)]

    def raw_inputs(self, values: Mapping[str, np.ndarray], idx: Index) -> list[Any]:
        """The operand entries for result[idx], of whatever type `values` holds."""
        pick = {"ij": lambda a: a[idx], "i": lambda a: a[idx[0]], "j": lambda a: a[idx[-1]]}
        return [
            pick[how](values[name]) if how in pick else values[name][()]
            for name, how in zip(self.operands, self.align, strict=True)
        ]

    def constants(self, idx: Index) -> dict[str, Any]:
        return {
            k: v[idx] if isinstance(v, np.ndarray) and v.shape == self.shape else v
            for k, v in self.consts.items()
        }

    def element(self, values: Mapping[str, np.ndarray], idx: Index) -> float:
        args = [np.float64(x) for x in self.inputs(values, idx)]
        return float(self.formula.compute(*args, **self.constants(idx)))


@dataclass(frozen=True, eq=False)
class RowWise(Step):
    """A reduction or normalisation over each row of one operand.

    kind: "softmax" (row → row), "mean" / "sum" / "var" (row → scalar), "mean_loss" (vector
    → scalar over the first `count` entries). A "var" step's second operand is the row mean
    the page subtracts.
    """

    kind: str = "softmax"
    count: int = 0

    def row(self, values: Mapping[str, np.ndarray], idx: Index) -> np.ndarray:
        src = values[self.operands[0]]
        return src if src.ndim == 1 else src[idx[0]]

    def element(self, values: Mapping[str, np.ndarray], idx: Index) -> float:
        row = self.row(values, idx)
        if self.kind == "softmax":
            _, exps, total = softmax_parts(row)
            return exps[idx[1]] / total if idx[1] in exps else 0.0
        if self.kind == "mean":
            return math_fsum(row) / row.size
        if self.kind == "sum":
            return math_fsum(row)
        if self.kind == "var":
            mean = math_fsum(row) / row.size
            return math_fsum((row - mean) ** 2) / row.size
        if self.kind == "mean_loss":
            return math_fsum(row[: self.count]) / self.count
        raise ValueError(self.kind)


@dataclass(frozen=True, eq=False)
class Gather(Step):
    """Rows picked or scattered by token id.

    kind "lookup": result[i, j] = src[token_i, j] (an embedding row per token);
    kind "pick": result[i] = src[i, token_i] (the probability of each target);
    kind "scatter": result[v, j] = Σ_{i: token_i = v} dX[i, j] (the embedding gradient);
    kind "slice": result[i, j] = src[i, offset + j] (one head's columns);
    kind "concat": result[i, j] = operand h's [i, j − h·width];
    kind "pad": result[i, j] = src[i, j] for i < len(src), else 0 (positions not used).
    """

    kind: str = "scatter"
    tokens: tuple[int, ...] = ()
    offset: int = 0
    width: int = 0

    def sources(self, values: Mapping[str, np.ndarray], idx: Index) -> list[tuple[str, Index]]:
        """The (operand name, index) entries summed into result[idx]; empty means zero."""
        if self.kind == "pick":
            return [(self.operands[0], (idx[0], self.tokens[idx[0]]))]
        i, j = idx
        if self.kind == "lookup":
            return [(self.operands[0], (self.tokens[i], j))]
        if self.kind == "scatter":
            return [(self.operands[0], (r, j)) for r, t in enumerate(self.tokens) if t == i]
        if self.kind == "slice":
            return [(self.operands[0], (i, self.offset + j))]
        if self.kind == "concat":
            return [(self.operands[j // self.width], (i, j % self.width))]
        if self.kind == "pad":
            return [(self.operands[0], (i, j))] if i < values[self.operands[0]].shape[0] else []
        raise ValueError(self.kind)

    def element(self, values: Mapping[str, np.ndarray], idx: Index) -> float:
        return math_fsum(np.array([values[n][k] for n, k in self.sources(values, idx)]))


Cell = tuple[str, Index]  # an entry of a quantity: its name and index


def cell_names(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """For each quantity an array of its entries' own (name, index): handed to a step's
    accessors (factors, raw_inputs, row, sources) in place of values, it says which operand
    entries an entry reads. The arrays are shared: read them, never write into them."""
    return {name: _cells(name, tuple(shape)) for name, shape in shapes.items()}


@functools.lru_cache(maxsize=4096)
def _cells(name: str, shape: tuple[int, ...]) -> np.ndarray:
    # made once per quantity: a product's every element asks for its factors' cells
    cells = np.empty(shape, dtype=object)
    for idx in np.ndindex(shape):
        cells[idx] = (name, idx)
    cells.flags.writeable = False
    return cells


def cells_read(step: Step, cells: Mapping[str, np.ndarray], idx: Index) -> list[Cell]:
    """The operand entries result[idx] is computed from (`cells` from cell_names). A
    Jacobian's entries are numbers of their own, not cells: its rows' inputs are left out."""
    if isinstance(step, Contraction):
        if step.kind == "jacobian":
            read = list(cells[step.operands[0]][idx[0]])
        elif step.kind in ("colsum", "coldot"):
            read = [c for n in step.operands for c in cells[n][:, idx[0]]]
        else:
            a, b = step.factors(cells, idx)
            read = [*a, *b]
        return read + ([(step.bias, idx[-1:])] if step.bias is not None else [])
    if isinstance(step, Elementwise):
        return step.raw_inputs(cells, idx)
    if isinstance(step, RowWise):
        row = list(step.row(cells, idx))
        if step.kind == "mean_loss":
            row = row[: step.count]
        return row + [cells[n][idx[:1]] for n in step.operands[1:]]
    if isinstance(step, Gather):
        return [cells[n][k] for n, k in step.sources(cells, idx)]
    raise TypeError(step)


def math_fsum(x: np.ndarray) -> float:
    """Exact-rounded sum: explanations must reproduce results to the last bit or so."""
    return math.fsum(np.asarray(x, dtype=np.float64).ravel().tolist())


@dataclass
class Trace:
    """Values by name (parameters first, then every result), the steps in order, the
    parameters' descriptions in the order of the data flow, and the chapters."""

    values: dict[str, np.ndarray] = field(default_factory=dict)
    params: dict[str, Desc] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    chapters: list[Chapter] = field(default_factory=list)
    _by_name: dict[str, Step] = field(default_factory=dict, repr=False)

    def add(self, step: Step) -> np.ndarray:
        if step.name in self.values:
            raise ValueError(f"trace already has {step.name!r}")
        self.values[step.name] = step.result
        self.steps.append(step)
        self._by_name[step.name] = step
        return step.result

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[name]

    def step(self, name: str) -> Step:
        return self._by_name[name]

    def chapter(self, number: int) -> Iterator[Step]:
        return (s for s in self.steps if s.chapter == number)

    def masked(self, name: str) -> np.ndarray:
        """Where the causal mask, not arithmetic, sets `name`'s entries (−∞ scores, zero
        score gradients): a boolean array of its shape, all False for most quantities."""
        step = self._by_name.get(name)
        mask = step.consts.get("masked") if isinstance(step, Elementwise) else None
        shape = np.shape(self.values[name])
        return np.zeros(shape, dtype=bool) if mask is None else np.broadcast_to(mask, shape)

    def producer(self, name: str) -> Step | None:
        """The step that computed `name`, or None for a parameter or input."""
        return self._by_name.get(name)

    def desc(self, name: str) -> Desc:
        step = self._by_name.get(name)
        return step.desc if step is not None else self.params[name]

    def symbol(self, name: str) -> str:
        return self.desc(name).symbol

    def find(self, role: str) -> Step:
        """The first step of a role ("loss", "scores"): for facts every layer shares."""
        return next(s for s in self.steps if s.desc.role == role)

    def updates(self, param: str) -> list[Step]:
        """The AdamW steps of one parameter, in order (m, v, m̂, v̂, θ')."""
        return [s for s in self.steps if s.desc.of == param]

    def flows(self, part: str) -> list[tuple[int, int, str]]:
        """Within one part, which chapter hands which result to which later chapter:
        (from, to, name), once per pair of chapter and result, in the order they are read."""
        inside = {ch.number for ch in self.chapters if ch.part == part}
        out: dict[tuple[int, int, str], None] = {}
        for step in self.steps:
            if step.chapter not in inside:
                continue
            for name in step.operands:
                src = self.producer(name)
                if src is not None and src.chapter in inside and src.chapter != step.chapter:
                    out[(src.chapter, step.chapter, name)] = None
        return list(out)

    @property
    def loss(self) -> Step:
        return self.find("loss")
