"""Every step's explanation of every element reproduces what the engine computed.

`Step.element` re-derives result[idx] from the step's own account of it (the products of a
contraction, the inputs of a formula, the row of a reduction, the sources of a gather),
summing with math.fsum. Agreement is to 1e-12 relative. For sums (contractions, gathers,
row reductions) "relative" is measured against Σ|terms|, the scale a floating-point sum is
accurate to: a result that is small only because its terms cancel (e.g. 5e-9 from terms
of 1e-4) cannot be, and need not be, reproduced to 1e-12 of itself.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from workbook import engine
from workbook.config import Config
from workbook.trace import Contraction, Elementwise, Gather, RowWise, Step

RTOL = 1e-12

CONFIG = Config()
TRACE = engine.run(CONFIG)


def scale(step: Step, idx: tuple[int, ...]) -> float:
    """The magnitude result[idx] is computed to: |result|, or Σ|terms| for a sum."""
    values = TRACE.values
    size = abs(float(step.result[idx]))
    if isinstance(step, Contraction):
        a, b = step.factors(values, idx)
        bias = step.bias_value(values, idx)
        size = max(size, math.fsum(np.abs(a * b).tolist()) + abs(bias or 0.0))
    elif isinstance(step, Gather):
        parts = [abs(float(values[n][k])) for n, k in step.sources(values, idx)]
        size = max(size, math.fsum(parts))
    elif isinstance(step, RowWise) and step.kind != "softmax":
        row = np.abs(step.row(values, idx))  # mean, var, sum: the average |entry| at least
        size = max(size, math.fsum(row.tolist()) / row.size)
    return size


@pytest.mark.parametrize("step", TRACE.steps, ids=lambda s: s.name)
def test_every_element_is_reproduced(step: Step) -> None:
    assert step.result.dtype == np.float64
    bad = []
    for idx in np.ndindex(step.result.shape):
        expected = float(step.result[idx])
        got = step.element(TRACE.values, idx)
        if math.isinf(expected) or math.isinf(got):
            ok = got == expected
        else:
            ok = math.isfinite(got) and abs(got - expected) <= RTOL * scale(step, idx)
        if not ok:
            bad.append(f"{list(idx)}: element() {got!r}, result {expected!r}")
    assert not bad, f"{step.name}: " + "; ".join(bad[:10])


def test_masked_scores_are_minus_infinity_and_explained_so() -> None:
    T = CONFIG.T
    for h in range(CONFIG.heads):
        step = TRACE.step(f"scores.{h}")
        for i in range(T):
            for j in range(T):
                value = step.element(TRACE.values, (i, j))
                assert (value == -math.inf) == (j > i), (h, i, j, value)


def test_every_step_kind_is_exercised() -> None:
    kinds = {type(s) for s in TRACE.steps}
    assert kinds == {Contraction, Elementwise, Gather, RowWise}
    assert {s.kind for s in TRACE.steps if isinstance(s, Contraction)} == {
        "matmul",
        "jacobian",
        "colsum",
        "coldot",
    }
    assert {s.kind for s in TRACE.steps if isinstance(s, Gather)} >= {
        "lookup",
        "pick",
        "scatter",
        "slice",
        "concat",
        "pad",
    }


def test_values_are_the_step_results() -> None:
    names = [s.name for s in TRACE.steps]
    assert len(names) == len(set(names))
    for s in TRACE.steps:
        assert TRACE[s.name] is s.result
        assert TRACE.producer(s.name) is s
    assert TRACE.producer("W_Q.0") is None


# The seed's 13 chapters: 7 forward, 5 backward, 1 optimizer, in its words.
SEED_CHAPTERS = [
    ("forward", "Tokenization and embeddings"),
    ("forward", "Q, K, V projections"),
    ("forward", "Attention scores"),
    ("forward", "Multi-head attention"),
    ("forward", "Feed-forward network"),
    ("forward", "Residual connection and layer normalization"),
    ("forward", "Logits and cross-entropy loss"),
    ("backward", "Loss gradients"),
    ("backward", "Output layer gradients"),
    ("backward", "LayerNorm and feed-forward backward"),
    ("backward", "Attention backward"),
    ("backward", "Embedding gradients"),
    ("optimizer", "AdamW update"),
]


def test_chapters_are_in_order_and_cover_all_thirteen() -> None:
    chapters = [s.chapter for s in TRACE.steps]
    assert chapters == sorted(chapters)
    assert set(chapters) == set(range(1, 14))
    assert [(ch.part, ch.title) for ch in TRACE.chapters] == SEED_CHAPTERS
    assert [ch.number for ch in TRACE.chapters] == list(range(1, 14))
    assert all(ch.layer is None for ch in TRACE.chapters)
    assert TRACE.steps[0].chapter == 1 and TRACE.steps[-1].chapter == 13
    assert TRACE.step("loss").chapter == 7
    assert TRACE.step("d.logits").chapter == 8
    assert TRACE.step("updated.W_lm").chapter == 13


def test_q0_element_00_terms() -> None:
    step = TRACE.step("Q.0")
    assert isinstance(step, Contraction)
    terms = step.terms(TRACE.values, (0, 0))
    X, W = TRACE["X"], TRACE["W_Q.0"]
    assert len(terms) == 16
    assert terms == [(X[0, k], W[k, 0]) for k in range(16)]
    assert math.fsum(a * b for a, b in terms) == pytest.approx(TRACE["Q.0"][0, 0], rel=1e-14)
