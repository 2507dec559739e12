"""The engine's default step against an independent PyTorch float64 build of the same model.

Every activation, every gradient (parameters and intermediates) and every AdamW result
the engine records is compared with rtol 1e-10, atol 1e-12.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional
from torch_reference import ADAM_KINDS, adamw_step, reference

from workbook import engine, params
from workbook.config import Config

RTOL, ATOL = 1e-10, 1e-12

CONFIG = Config()
INITIAL = params.initialize(CONFIG)
TRACE = engine.run(CONFIG, initial=INITIAL)
REF = reference(CONFIG, INITIAL)
PARAMS = params.names(CONFIG)
ADAM_ON_ENGINE_GRADS = adamw_step(CONFIG, INITIAL, {p: TRACE[f"d.{p}"] for p in PARAMS})
HEADS = range(CONFIG.heads)

# What the model description says the trace holds (beyond the two gathered embedding rows).
SPEC_ACTIVATIONS = [
    "X",
    *(f"{k}.{h}" for k in ("Q", "K", "V") for h in HEADS),
    *(f"{k}.{h}" for k in ("QK", "scores", "attn", "head") for h in HEADS),
    "concat",
    "attn_out",
    "ffn_hidden",
    "ffn_act",
    "ffn_out",
    "residual",
    "ln_mean",
    "ln_var",
    "ln_hat",
    "ln_out",
    "logits",
    "probs",
    "p_target",
    "loss_per_position",
    "loss",
]
# Activations whose gradient the engine's backward pass must record.
SPEC_ACTIVATION_GRADS = [
    "X",
    *(f"{k}.{h}" for k in ("Q", "K", "V", "QK", "scores", "attn", "head") for h in HEADS),
    "concat",
    "attn_out",
    "ffn_hidden",
    "ffn_act",
    "ffn_out",
    "residual",
    "ln_hat",
    "ln_out",
    "logits",
    "probs",
]

ADAM_NAMES = {f"{k}.{p}" for k in ADAM_KINDS for p in PARAMS}
ENGINE_GRADS = [s.name for s in TRACE.steps if s.name.startswith("d.")]
ENGINE_ACTIVATIONS = [
    s.name for s in TRACE.steps if not s.name.startswith("d.") and s.name not in ADAM_NAMES
]


def close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, err_msg=what)


def test_engine_records_everything_the_spec_lists() -> None:
    assert set(SPEC_ACTIVATIONS) <= set(ENGINE_ACTIVATIONS)
    assert set(ENGINE_ACTIVATIONS) <= set(REF.values), "an activation the reference cannot check"
    expected_grads = {f"d.{n}" for n in [*PARAMS, *SPEC_ACTIVATION_GRADS]}
    assert expected_grads <= set(ENGINE_GRADS)
    assert set(ENGINE_GRADS) <= set(REF.grads), "a gradient the reference cannot check"
    assert {f"{k}.{p}" for k in ADAM_KINDS for p in PARAMS} <= set(TRACE.values)


def test_initial_parameters_are_not_modified() -> None:
    fresh = params.initialize(CONFIG)
    for n in PARAMS:
        np.testing.assert_array_equal(INITIAL[n], fresh[n], err_msg=n)
        np.testing.assert_array_equal(TRACE[n], fresh[n], err_msg=n)


@pytest.mark.parametrize("name", ENGINE_ACTIVATIONS)
def test_activation(name: str) -> None:
    mine, theirs = TRACE[name], REF.values[name]
    if name.startswith("scores."):
        masked = np.triu(np.ones((CONFIG.T, CONFIG.T), dtype=bool), k=1)
        assert np.all(mine[masked] == -np.inf)
        assert np.all(theirs[masked] == -np.inf)
        assert np.all(np.isfinite(mine[~masked]))
        close(mine[~masked], theirs[~masked], name)
    else:
        assert np.all(np.isfinite(mine)), name
    close(mine, theirs, name)


@pytest.mark.parametrize("name", ENGINE_GRADS)
def test_gradient(name: str) -> None:
    mine, theirs = TRACE[name], REF.grads[name]
    assert np.all(np.isfinite(mine)), name
    close(mine, theirs, name)
    if name.startswith(("d.scores.", "d.QK.")):
        masked = np.triu(np.ones((CONFIG.T, CONFIG.T), dtype=bool), k=1)
        assert np.all(mine[masked] == 0.0) and np.all(theirs[masked] == 0.0)


@pytest.mark.parametrize("kind", ADAM_KINDS)
@pytest.mark.parametrize("param", PARAMS)
def test_adamw(kind: str, param: str) -> None:
    name = f"{kind}.{param}"
    close(TRACE[name], REF.adamw[name], name)


@pytest.mark.parametrize("param", PARAMS)
def test_adamw_on_the_engines_own_gradients(param: str) -> None:
    """AdamW alone: torch.optim.AdamW given exactly the engine's gradients."""
    for kind in ADAM_KINDS:
        name = f"{kind}.{param}"
        close(TRACE[name], ADAM_ON_ENGINE_GRADS[name], name)


def test_adamw_actually_moves_every_parameter() -> None:
    """Guards the AdamW comparison against comparing two copies of the old values."""
    for p in PARAMS:
        moved = TRACE[f"updated.{p}"] != TRACE[p]
        assert moved.all(), f"{p}: {np.count_nonzero(~moved)} values did not change"


def test_torch_builtins_agree() -> None:
    """The reference's hand-written LayerNorm and loss equal torch's own layers."""
    t = REF.tensors
    P = {n: torch.tensor(a) for n, a in INITIAL.items()}
    residual = torch.tensor(TRACE["residual"])
    ln = functional.layer_norm(
        residual, (CONFIG.d_model,), P["gamma"], P["beta"], eps=CONFIG.ln_eps
    )
    close(TRACE["ln_out"], ln.numpy(), "ln_out vs functional.layer_norm")
    targets = torch.tensor(CONFIG.tokens[1:])
    ce = functional.cross_entropy(torch.tensor(TRACE["logits"][:-1]), targets)
    close(np.asarray(TRACE["loss"]), ce.numpy(), "loss vs functional.cross_entropy")
    close(np.asarray(TRACE["loss"]), t["loss"].detach().numpy(), "loss")
    erf_gelu = functional.gelu(torch.tensor(TRACE["ffn_hidden"]), approximate="none").numpy()
    assert not np.allclose(TRACE["ffn_act"], erf_gelu, rtol=RTOL, atol=ATOL), (
        "GELU must be the tanh approximation, not the erf form"
    )


def test_engine_loss_is_the_forward_of_run() -> None:
    assert engine.loss(CONFIG, INITIAL) == float(TRACE["loss"])
    close(np.asarray(engine.loss(CONFIG, INITIAL)), REF.values["loss"], "engine.loss")
