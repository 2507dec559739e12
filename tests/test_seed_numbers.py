"""The default configuration's numbers, pinned: tokens, parameter counts, initial values, loss."""

from __future__ import annotations

import random

import numpy as np
import pytest

from workbook import engine, params
from workbook.config import Config

CONFIG = Config()

EXPECTED_COUNTS = {
    "E_token": 96,
    "E_pos": 80,
    "W_Q.0": 128,
    "W_Q.1": 128,
    "W_K.0": 128,
    "W_K.1": 128,
    "W_V.0": 128,
    "W_V.1": 128,
    "W_O": 256,
    "W1": 1024,
    "b1": 64,
    "W2": 1024,
    "b2": 16,
    "gamma": 16,
    "beta": 16,
    "W_lm": 96,
}

# "random.seed(seed), then gauss(0, init_scale) for every drawn value, row by row", in this
# order; gamma (ones) and beta (zeros) are not drawn.
DRAW_ORDER = [
    "E_token",
    "E_pos",
    "W_Q.0",
    "W_Q.1",
    "W_K.0",
    "W_K.1",
    "W_V.0",
    "W_V.1",
    "W_O",
    "W1",
    "b1",
    "W2",
    "b2",
    "W_lm",
]


@pytest.fixture(scope="module")
def trace():
    return engine.run(CONFIG)


def test_tokens() -> None:
    assert CONFIG.vocab == ("<PAD>", "<BOS>", "<EOS>", "I", "like", "transformers")
    assert CONFIG.tokens == (1, 3, 4, 5, 2)
    assert CONFIG.T == 5
    assert CONFIG.d_k == 8


def test_loss(trace) -> None:
    loss = float(trace["loss"])
    assert round(loss, 4) == 1.8299
    assert loss == pytest.approx(1.829868, abs=5e-7)


def test_logits_row_0(trace) -> None:
    assert trace["logits"].shape == (5, 6)
    assert np.round(trace["logits"][0], 4).tolist() == [
        0.3362,
        -0.1025,
        -0.0514,
        -0.0053,
        0.2907,
        0.0848,
    ]


def test_parameter_counts(trace) -> None:
    assert params.count(CONFIG) == EXPECTED_COUNTS
    assert sum(params.count(CONFIG).values()) == 3456
    assert params.names(CONFIG) == list(EXPECTED_COUNTS)
    for name, n in EXPECTED_COUNTS.items():
        assert trace[name].size == n, name
        assert trace[f"d.{name}"].shape == trace[name].shape, name
        assert trace[f"updated.{name}"].shape == trace[name].shape, name


def test_parameter_shapes() -> None:
    shapes = params.shapes(CONFIG)
    assert shapes["E_token"] == (6, 16)
    assert shapes["E_pos"] == (5, 16)
    assert all(shapes[f"W_{k}.{h}"] == (16, 8) for k in "QKV" for h in (0, 1))
    assert shapes["W_O"] == (16, 16)
    assert shapes["W1"] == (64, 16) and shapes["b1"] == (64,)
    assert shapes["W2"] == (16, 64) and shapes["b2"] == (16,)
    assert shapes["gamma"] == shapes["beta"] == (16,)
    assert shapes["W_lm"] == (6, 16)


@pytest.fixture
def global_random():
    """Use the module-level `random` as the seed's text does, then put its state back."""
    state = random.getstate()
    yield random
    random.setstate(state)


def test_first_value_is_the_first_draw_after_seeding(global_random) -> None:
    global_random.seed(42)
    first = global_random.gauss(0, 0.1)
    assert params.initialize(CONFIG)["E_token"][0, 0] == first
    assert first == pytest.approx(-0.014409032957792837, rel=1e-15)


def test_every_initial_value_in_draw_order(global_random) -> None:
    global_random.seed(42)
    expected = {
        name: np.array([global_random.gauss(0, 0.1) for _ in range(EXPECTED_COUNTS[name])])
        for name in DRAW_ORDER
    }
    init = params.initialize(CONFIG)
    assert set(init) == set(EXPECTED_COUNTS)
    for name in DRAW_ORDER:
        # row by row: the flat C-order reading of each tensor is the draw sequence
        np.testing.assert_array_equal(init[name].ravel(), expected[name], err_msg=name)
    np.testing.assert_array_equal(init["gamma"], np.ones(16))
    np.testing.assert_array_equal(init["beta"], np.zeros(16))


def test_initialisation_is_deterministic_and_seeded() -> None:
    a, b = params.initialize(CONFIG), params.initialize(CONFIG)
    other = params.initialize(Config(seed=43))
    for name in DRAW_ORDER:
        np.testing.assert_array_equal(a[name], b[name])
        assert not np.array_equal(a[name], other[name]), name
    scaled = params.initialize(Config(init_scale=0.2))
    np.testing.assert_allclose(scaled["W1"], 2 * a["W1"], rtol=1e-15)
