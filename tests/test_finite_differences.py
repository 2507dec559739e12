"""Hand-derived parameter gradients against central finite differences of `engine.loss`.

The error measure, for an analytic gradient g and a finite-difference estimate f:

    err(g, f) = |g − f| / max(|g|, |f|, floor)        and the check is  err < 1e-6.

`floor` is where a finite difference stops being able to resolve 1e-6 relative accuracy.
The loss is a float64 near 1.83, so each evaluation is exact only to a couple of units in
its last place: ulp(L) = 2.2e-16. A stencil Σ_k w_k L(θ + k h) / (D h) therefore carries
a rounding error up to ROUND_ULPS · ulp(L) · Σ|w_k| / (D h), and no gradient smaller than
that error / 1e-6 can be checked to 1e-6 relative. Below the floor the check is absolute
(|g − f| < 1e-6 · floor = the rounding bound), never skipped.

With h = 1e-6 the central difference's rounding bound is 4.4e-10, so the floor is 4.4e-4:
the 2,194 larger gradients get a true 1e-6 relative check, the rest (all of W_Q and W_K
among them, whose gradients are 1e-8..1e-4) only an absolute 4.4e-10 one. Those are
checked again with a sixth-order central stencil at h = 2e-2, whose rounding bound is
4e-14 (floor 4e-8), which gives them a 1e-6 relative check too.

The same two checks run on the pre-LN gpt2 model with two layers (6,736 parameters, loss
near 2.178, so ulp(L) = 4.4e-16 and the central floor is 8.9e-4, the sixth-order one
8.1e-8). The residual stream makes most of its gradients large: 6,391 are above the central
floor, 48 are exactly zero (PAD, EOS, the last E_pos row) and the 297 others, spread over
25 parameters (W_Q and W_K of both layers among them), are checked again with the
sixth-order stencil.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import shared_folder

from workbook import config, engine, params
from workbook.config import Config

RTOL = 1e-6
ROUND_ULPS = 2.0  # rounding error of one loss evaluation, in units of ulp(L)

CENTRAL = {1: 1.0, -1: -1.0}, 2.0, 1e-6  # weights, divisor D, step h
SIXTH_ORDER = {3: 1.0, 2: -9.0, 1: 45.0, -1: -45.0, -2: 9.0, -3: -1.0}, 60.0, 2e-2


@dataclass
class Step:
    """One config's step: the engine's trace and what the finite differences need."""

    config: Any
    initial: dict[str, np.ndarray] = field(init=False)
    trace: Any = field(init=False)
    loss: float = field(init=False)
    ulp: float = field(init=False)
    all: list[tuple[str, tuple[int, ...]]] = field(init=False)

    def __post_init__(self) -> None:
        self.initial = params.initialize(self.config)
        self.trace = engine.run(self.config, initial=self.initial)
        self.loss = float(self.trace["loss"])
        self.ulp = float(np.spacing(self.loss))
        self.all = [
            (n, idx) for n in params.names(self.config) for idx in np.ndindex(self.initial[n].shape)
        ]

    def rounding_floor(self, stencil: tuple[dict[int, float], float, float]) -> float:
        """The smallest |gradient| this stencil can check to RTOL, from its rounding bound."""
        weights, divisor, h = stencil
        bound = ROUND_ULPS * self.ulp * sum(abs(w) for w in weights.values()) / (divisor * h)
        return bound / RTOL

    def derivative(self, name: str, idx: tuple[int, ...], stencil) -> float:
        weights, divisor, h = stencil
        x = self.initial[name][idx]
        total = 0.0
        for k, w in weights.items():
            moved = self.initial[name].copy()
            moved[idx] = x + k * h
            total += w * engine.loss(self.config, self.initial | {name: moved})
        return total / (divisor * h)

    def grad(self, name: str, idx: tuple[int, ...]) -> float:
        return float(self.trace[f"d.{name}"][idx])


def relative_error(g: float, f: float, floor: float) -> float:
    return abs(g - f) / max(abs(g), abs(f), floor)


def check_central(step: Step, central: dict) -> int:
    """Every parameter against the central difference; the number checked truly relative."""
    floor = step.rounding_floor(CENTRAL)
    bad = []
    strict = 0
    for n, idx in step.all:
        g, f = step.grad(n, idx), central[n, idx]
        strict += max(abs(g), abs(f)) >= floor
        if relative_error(g, f, floor) >= RTOL:
            bad.append(f"{n}{list(idx)}: engine {g:.12e}, central difference {f:.12e}")
    assert not bad, f"{len(bad)} gradients disagree:\n" + "\n".join(bad[:20])
    return strict


def small_gradients(step: Step, central: dict) -> list[tuple[str, tuple[int, ...]]]:
    """The non-zero gradients under the central difference's floor."""
    floor = step.rounding_floor(CENTRAL)
    return [
        (n, idx)
        for n, idx in step.all
        if max(abs(step.grad(n, idx)), abs(central[n, idx])) < floor and step.grad(n, idx) != 0.0
    ]


def check_sixth_order(step: Step, small: list[tuple[str, tuple[int, ...]]]) -> int:
    """`small` against the sixth-order stencil; the number checked truly relative."""
    floor = step.rounding_floor(SIXTH_ORDER)
    assert floor < 2e-7
    bad = []
    strict = 0
    for n, idx in small:
        g, f = step.grad(n, idx), step.derivative(n, idx, SIXTH_ORDER)
        strict += max(abs(g), abs(f)) >= floor
        if relative_error(g, f, floor) >= RTOL:
            bad.append(f"{n}{list(idx)}: engine {g:.12e}, sixth-order difference {f:.12e}")
    assert not bad, f"{len(bad)} gradients disagree:\n" + "\n".join(bad[:20])
    return strict


def irrelevant(step: Step) -> set[tuple[str, tuple[int, ...]]]:
    """PAD, EOS (only at the last position, which predicts nothing) and E_pos rows ≥ T−1."""
    c = step.config
    pad, eos = c.vocab.index("<PAD>"), c.vocab.index("<EOS>")
    expected = {("E_token", (r, j)) for r in (pad, eos) for j in range(c.d_model)}
    expected |= {("E_pos", (r, j)) for r in range(c.T - 1, c.max_len) for j in range(c.d_model)}
    return expected


# ---------------------------------------------------------------------------------------
# The default config (seed model, one layer).

DEFAULT = Step(Config())
CONFIG, INITIAL, TRACE, LOSS = DEFAULT.config, DEFAULT.initial, DEFAULT.trace, DEFAULT.loss
ALL = DEFAULT.all
FLOOR = DEFAULT.rounding_floor(CENTRAL)


def shared_central(
    factory: pytest.TempPathFactory, name: str, step: Step
) -> dict[tuple[str, tuple[int, ...]], float]:
    """Every parameter's central difference, computed once in a test run whichever worker
    asks first (see conftest.shared_folder), as one .npy file per parameter (float64: read
    back exactly)."""

    def make(out: Path) -> None:
        for n in params.names(step.config):
            found = np.empty(step.initial[n].shape)
            for idx in np.ndindex(found.shape):
                found[idx] = step.derivative(n, idx, CENTRAL)
            np.save(out / f"{n}.npy", found)

    folder = shared_folder(factory, name, make)
    read = {n: np.load(folder / f"{n}.npy") for n in params.names(step.config)}
    return {(n, idx): float(read[n][idx]) for n, idx in step.all}


@pytest.fixture(scope="session")
def central(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, tuple[int, ...]], float]:
    return shared_central(tmp_path_factory, "central-differences-default", DEFAULT)


def test_every_parameter_is_checked() -> None:
    assert len(ALL) == 3456
    assert abs(LOSS - 1.829868) < 1e-6
    assert 4.4e-4 < FLOOR < 4.5e-4


def test_central_differences_every_parameter(central) -> None:
    strict = check_central(DEFAULT, central)
    # Not vacuous: most gradients are above the floor and get a truly relative check.
    assert strict >= 2000, strict


def test_gradients_that_do_not_matter_are_exactly_zero(central) -> None:
    zero = {(n, idx) for n, idx in ALL if TRACE[f"d.{n}"][idx] == 0.0}
    assert zero == irrelevant(DEFAULT)
    assert all(central[key] == 0.0 for key in zero)


def test_small_gradients_with_a_sixth_order_stencil(central) -> None:
    """Every gradient under the central difference's floor, checked to 1e-6 relative again."""
    assert DEFAULT.rounding_floor(SIXTH_ORDER) < 1e-7
    small = small_gradients(DEFAULT, central)
    assert len(small) > 1000
    assert {n for n, _ in small} >= {f"W_{k}.{h}" for k in "QK" for h in range(CONFIG.heads)}
    strict = check_sixth_order(DEFAULT, small)
    assert strict >= len(small) - 10, (strict, len(small))


# ---------------------------------------------------------------------------------------
# The pre-LN gpt2 model with two layers.


@pytest.fixture(scope="session")
def gpt2() -> Step:
    if not hasattr(Config(), "layers"):
        pytest.skip("workbook.config.Config has no model/layers fields yet")
    return Step(config.from_mapping({"model": "gpt2", "layers": 2}))


@pytest.fixture(scope="session")
def gpt2_central(
    gpt2: Step, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[str, tuple[int, ...]], float]:
    return shared_central(tmp_path_factory, "central-differences-gpt2", gpt2)


@pytest.mark.slow
def test_gpt2_every_parameter_is_checked(gpt2: Step) -> None:
    assert len(gpt2.all) == 6736
    assert {n.split(".", 1)[0] for n in params.names(gpt2.config)} >= {"l0", "l1", "ln_f"}
    assert abs(gpt2.loss - 2.178131) < 1e-6
    assert 8.8e-4 < gpt2.rounding_floor(CENTRAL) < 8.9e-4


@pytest.mark.slow
def test_gpt2_central_differences_every_parameter(gpt2: Step, gpt2_central) -> None:
    strict = check_central(gpt2, gpt2_central)
    assert strict >= 6000, strict


@pytest.mark.slow
def test_gpt2_gradients_that_do_not_matter_are_exactly_zero(gpt2: Step, gpt2_central) -> None:
    zero = {(n, idx) for n, idx in gpt2.all if gpt2.grad(n, idx) == 0.0}
    assert zero == irrelevant(gpt2)
    assert all(gpt2_central[key] == 0.0 for key in zero)


@pytest.mark.slow
def test_gpt2_small_gradients_with_a_sixth_order_stencil(gpt2: Step, gpt2_central) -> None:
    small = small_gradients(gpt2, gpt2_central)
    assert len(small) > 100, len(small)
    assert {n for n, _ in small} >= {f"l{i}.W_{k}.0" for i in (0, 1) for k in "QK"}
    strict = check_sixth_order(gpt2, small)
    assert strict >= len(small) - 10, (strict, len(small))
