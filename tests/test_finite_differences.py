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
"""

from __future__ import annotations

import numpy as np
import pytest

from workbook import engine, params
from workbook.config import Config

RTOL = 1e-6
ROUND_ULPS = 2.0  # rounding error of one loss evaluation, in units of ulp(L)

CONFIG = Config()
INITIAL = params.initialize(CONFIG)
TRACE = engine.run(CONFIG, initial=INITIAL)
LOSS = float(TRACE["loss"])
ULP = float(np.spacing(LOSS))

CENTRAL = {1: 1.0, -1: -1.0}, 2.0, 1e-6  # weights, divisor D, step h
SIXTH_ORDER = {3: 1.0, 2: -9.0, 1: 45.0, -1: -45.0, -2: 9.0, -3: -1.0}, 60.0, 2e-2


def rounding_floor(stencil: tuple[dict[int, float], float, float]) -> float:
    """The smallest |gradient| this stencil can check to RTOL, from its rounding bound."""
    weights, divisor, h = stencil
    bound = ROUND_ULPS * ULP * sum(abs(w) for w in weights.values()) / (divisor * h)
    return bound / RTOL


def derivative(name: str, idx: tuple[int, ...], stencil) -> float:
    weights, divisor, h = stencil
    x = INITIAL[name][idx]
    total = 0.0
    for k, w in weights.items():
        moved = INITIAL[name].copy()
        moved[idx] = x + k * h
        total += w * engine.loss(CONFIG, INITIAL | {name: moved})
    return total / (divisor * h)


def relative_error(g: float, f: float, floor: float) -> float:
    return abs(g - f) / max(abs(g), abs(f), floor)


ALL = [(n, idx) for n in params.names(CONFIG) for idx in np.ndindex(INITIAL[n].shape)]
FLOOR = rounding_floor(CENTRAL)


@pytest.fixture(scope="module")
def central() -> dict[tuple[str, tuple[int, ...]], float]:
    return {(n, idx): derivative(n, idx, CENTRAL) for n, idx in ALL}


def test_every_parameter_is_checked() -> None:
    assert len(ALL) == 3456
    assert abs(LOSS - 1.829868) < 1e-6
    assert 4.4e-4 < FLOOR < 4.5e-4


def test_central_differences_every_parameter(central) -> None:
    bad = []
    strict = 0
    for n, idx in ALL:
        g, f = float(TRACE[f"d.{n}"][idx]), central[n, idx]
        strict += max(abs(g), abs(f)) >= FLOOR
        if relative_error(g, f, FLOOR) >= RTOL:
            bad.append(f"{n}{list(idx)}: engine {g:.12e}, central difference {f:.12e}")
    assert not bad, f"{len(bad)} gradients disagree:\n" + "\n".join(bad[:20])
    # Not vacuous: most gradients are above the floor and get a truly relative check.
    assert strict >= 2000, strict


def test_gradients_that_do_not_matter_are_exactly_zero(central) -> None:
    """PAD, EOS (only at the last position, which predicts nothing) and E_pos rows ≥ T−1."""
    zero = {(n, idx) for n, idx in ALL if TRACE[f"d.{n}"][idx] == 0.0}
    pad, eos = CONFIG.vocab.index("<PAD>"), CONFIG.vocab.index("<EOS>")
    expected = {("E_token", (r, j)) for r in (pad, eos) for j in range(CONFIG.d_model)}
    expected |= {("E_pos", (r, j)) for r in range(CONFIG.T - 1, CONFIG.max_len) for j in range(16)}
    assert zero == expected
    assert all(central[key] == 0.0 for key in zero)


def test_small_gradients_with_a_sixth_order_stencil(central) -> None:
    """Every gradient under the central difference's floor, checked to 1e-6 relative again."""
    floor = rounding_floor(SIXTH_ORDER)
    assert floor < 1e-7
    small = [
        (n, idx)
        for n, idx in ALL
        if max(abs(TRACE[f"d.{n}"][idx]), abs(central[n, idx])) < FLOOR
        and TRACE[f"d.{n}"][idx] != 0.0
    ]
    assert len(small) > 1000
    assert {n for n, _ in small} >= {f"W_{k}.{h}" for k in "QK" for h in range(CONFIG.heads)}
    bad = []
    strict = 0
    for n, idx in small:
        g, f = float(TRACE[f"d.{n}"][idx]), derivative(n, idx, SIXTH_ORDER)
        strict += max(abs(g), abs(f)) >= floor
        if relative_error(g, f, floor) >= RTOL:
            bad.append(f"{n}{list(idx)}: engine {g:.12e}, sixth-order difference {f:.12e}")
    assert not bad, f"{len(bad)} gradients disagree:\n" + "\n".join(bad[:20])
    assert strict >= len(small) - 10, (strict, len(small))
