"""The engine's step against an independent PyTorch float64 build of the same models.

For both families (seed, gpt2) at depth 1, 2 and 3, every activation, every gradient
(parameters, intermediates and path shares) and every AdamW result the engine records is
compared with rtol 1e-10, atol 1e-12; a failure lists every disagreeing name with its
largest absolute difference. The reference itself is checked without the engine against a
second formulation from torch's own layers (`builtin_loss`), and the engine's parameters
against the initialisation contract, rebuilt draw for draw.

While the package's Config has no `model`/`layers` fields, only the default (seed, one
layer) reaches the engine; the other families' engine tests skip, and the reference-only
tests run on a stand-in (`Settings`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
import torch
from torch.nn import functional
from torch_reference import (
    ADAM_KINDS,
    MODELS,
    Reference,
    Settings,
    adamw_step,
    builtin_loss,
    initialize,
    layer_norms,
    layers_of,
    ln_jacobian_outputs,
    model_of,
    parameter_names,
    prefix,
    reference,
)

from workbook import config, engine, params
from workbook.config import Config

RTOL, ATOL = 1e-10, 1e-12

ENGINE_READY = hasattr(Config(), "model") and hasattr(Config(), "layers")
DEPTHS = (1, 2, 3)
FAMILIES = [(m, n) for m in MODELS for n in DEPTHS]
IDS = [f"{m}x{n}" for m, n in FAMILIES]
family = pytest.mark.parametrize(("model", "layers"), FAMILIES, ids=IDS)


def settings(model: str, layers: int) -> Any:
    """The config of a family: the package's own once it has the fields, else a stand-in."""
    if ENGINE_READY:
        return config.from_mapping({"model": model, "layers": layers})
    if (model, layers) == ("seed", 1):
        return Config()
    return Settings(Config(), model, layers)


def needs_engine(model: str, layers: int) -> None:
    if not ENGINE_READY and (model, layers) != ("seed", 1):
        pytest.skip("workbook.config.Config has no model/layers fields yet")


# ---------------------------------------------------------------------------------------
# What the specification says each family records.


def attention_input(c: Any, layer: int) -> str:
    p = prefix(c, layer)
    return f"{p}ln1_out" if model_of(c) == "gpt2" else layer_input(c, layer)


def layer_input(c: Any, layer: int) -> str:
    if layer == 0:
        return "X"
    last = prefix(c, layer - 1)
    return f"{last}ln_out" if model_of(c) == "seed" else f"{last}residual2"


def ln_parts(q: str) -> list[str]:
    return [f"{q}_{k}" for k in ("mean", "var", "hat", "out")]


def spec_activations(c: Any) -> list[str]:
    """Every activation the specification lists, in data-flow order."""
    gpt2 = model_of(c) == "gpt2"
    H = range(c.heads)
    names = ["E_token[tokens]", "E_pos[0:T]", "X"]
    for layer in range(layers_of(c)):
        p = prefix(c, layer)
        names += ln_parts(f"{p}ln1") if gpt2 else []
        names += [f"{p}{k}.{h}" for k in ("Q", "K", "V", "QK", "scores", "attn", "head") for h in H]
        names += [f"{p}concat", f"{p}attn_out"]
        names += [f"{p}residual1", *ln_parts(f"{p}ln2")] if gpt2 else []
        names += [f"{p}ffn_hidden", f"{p}ffn_act", f"{p}ffn_out"]
        names += [f"{p}residual2"] if gpt2 else [f"{p}residual", *ln_parts(f"{p}ln")]
    names += ln_parts("ln_f") if gpt2 else []
    return [*names, "logits", "probs", "p_target", "loss_per_position", "loss"]


def spec_activation_grads(c: Any) -> list[str]:
    """Activations (and paths) whose gradient the engine's backward pass must record:
    everything but the two lookups, the loss pieces and LayerNorm's mean and variance
    (which the Jacobian product goes around)."""
    gpt2 = model_of(c) == "gpt2"
    H = range(c.heads)
    skip = ("E_token[tokens]", "E_pos[0:T]", "p_target", "loss_per_position", "loss")
    names = [n for n in spec_activations(c) if n not in skip and not n.endswith(("_mean", "_var"))]
    for layer in range(layers_of(c)):
        p = prefix(c, layer)
        names += [f"{p}X_{k}.{h}" for k in "QKV" for h in H]
        names += [f"{p}X_ln1", f"{p}residual1_ln2"] if gpt2 else [f"{p}attn_out_ffn"]
    return names


# ---------------------------------------------------------------------------------------
# One engine run and one reference run per family, made on first use.


@dataclass
class Case:
    config: Any
    initial: dict[str, np.ndarray]
    trace: Any
    ref: Reference
    params: list[str]
    steps: list[str]
    grads: list[str]  # the engine's d.<name> steps
    adam: list[str]  # the engine's AdamW steps
    activations: list[str]  # every other step


@functools.cache
def engine_case(model: str, layers: int) -> Case:
    c = settings(model, layers)
    initial = params.initialize(c)
    trace = engine.run(c, initial=initial)
    names = params.names(c)
    steps = [s.name for s in trace.steps]
    adam_names = {f"{k}.{p}" for k in ADAM_KINDS for p in names}
    grads = [n for n in steps if n.startswith("d.")]
    adam = [n for n in steps if n in adam_names]
    activations = [n for n in steps if not n.startswith("d.") and n not in adam_names]
    ref = reference(c, initial)
    return Case(c, initial, trace, ref, names, steps, grads, adam, activations)


@functools.cache
def reference_case(model: str, layers: int) -> tuple[Any, dict[str, np.ndarray], Reference]:
    """The reference alone, from the contract's initialisation (no engine involved)."""
    c = settings(model, layers)
    initial = initialize(c)
    return c, initial, reference(c, initial)


def mismatch(actual: Any, expected: Any, what: str) -> str | None:
    """None if actual ≈ expected (RTOL, ATOL, same shape), else one line saying how far."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        return f"{what}: shape {actual.shape} != {expected.shape}"
    if np.allclose(actual, expected, rtol=RTOL, atol=ATOL, equal_nan=False):
        return None
    finite = np.isfinite(actual) & np.isfinite(expected)
    diff = np.abs(actual[finite] - expected[finite])
    worst = f"max |Δ| {diff.max():.3e} over finite pairs" if diff.size else "no finite pair"
    off = np.count_nonzero(~np.isclose(actual, expected, rtol=RTOL, atol=ATOL))
    odd = np.count_nonzero(~finite & (actual != expected))
    odd_note = f", {odd} non-finite mismatches" if odd else ""
    size = float(np.abs(expected[np.isfinite(expected)]).max(initial=0.0))
    return (
        f"{what}: {worst}, {off}/{expected.size} elements off{odd_note}, max |expected| {size:.3e}"
    )


def report(bad: list[str], what: str) -> None:
    assert not bad, f"{len(bad)} {what} disagree:\n" + "\n".join(bad)


def head_kind(c: Any, name: str) -> str | None:
    """The kind of a per-head name: "scores" for "l1.scores.0" or "d.scores.1", else None."""
    base = name.removeprefix("d.")
    for layer in range(layers_of(c)):
        p = prefix(c, layer)
        kind, dot, head = base.removeprefix(p).partition(".")
        if base.startswith(p) and dot and head.isdigit():
            return kind
    return None


def masked(c: Any) -> np.ndarray:
    return np.triu(np.ones((c.T, c.T), dtype=bool), k=1)


# ---------------------------------------------------------------------------------------
# The reference alone: runs whether or not the engine knows the families.


def test_the_default_is_the_one_layer_seed_model() -> None:
    assert (model_of(Config()), layers_of(Config())) == ("seed", 1)
    assert prefix(Config(), 0) == ""


@family
def test_reference_names_cover_the_spec(model: str, layers: int) -> None:
    c, _, ref = reference_case(model, layers)
    paths = {"X_ln1", "residual1_ln2", "attn_out_ffn"}
    paths |= {f"X_{k}.{h}" for k in "QKV" for h in range(c.heads)}
    clones = {f"{prefix(c, layer)}{n}" for layer in range(layers) for n in paths}
    assert set(spec_activations(c)) == set(ref.values) - clones
    assert {f"d.{n}" for n in [*spec_activation_grads(c), *parameter_names(c)]} <= set(ref.grads)
    assert set(ref.adamw) == {f"{k}.{p}" for k in ADAM_KINDS for p in parameter_names(c)}


@family
def test_reference_against_a_second_formulation(model: str, layers: int) -> None:
    """Autograd through torch's own layers (layer_norm, scaled_dot_product_attention, linear,
    cross_entropy, all heads at once) gives the reference's loss and parameter gradients."""
    c, initial, ref = reference_case(model, layers)
    P = {n: torch.tensor(a, requires_grad=True) for n, a in initial.items()}
    loss = builtin_loss(c, P)
    loss.backward()
    bad = [mismatch(loss.detach().numpy(), ref.values["loss"], "loss")]
    bad += [mismatch(P[n].grad.numpy(), ref.grads[f"d.{n}"], f"d.{n}") for n in P]
    report([b for b in bad if b], "values")


@family
def test_reference_path_shares_add_up(model: str, layers: int) -> None:
    """A tensor's gradient is the sum of its paths' shares (clone() splits, never scales)."""
    c, _, ref = reference_case(model, layers)
    g = ref.grads
    bad = []
    for layer in range(layers):
        p = prefix(c, layer)
        shares = sum(g[f"d.{p}X_{k}.{h}"] for k in "QKV" for h in range(c.heads))
        bad.append(mismatch(shares, g[f"d.{attention_input(c, layer)}"], f"{p}attention input"))
        if model == "seed":
            total = g[f"d.{p}attn_out_ffn"] + g[f"d.{p}residual"]
            bad.append(mismatch(total, g[f"d.{p}attn_out"], f"d.{p}attn_out"))
        else:
            total = g[f"d.{p}residual1_ln2"] + g[f"d.{p}residual2"]
            bad.append(mismatch(total, g[f"d.{p}residual1"], f"d.{p}residual1"))
            total = g[f"d.{p}X_ln1"] + g[f"d.{p}residual1"]
            bad.append(mismatch(total, g[f"d.{layer_input(c, layer)}"], f"{p} layer input"))
    report([b for b in bad if b], "sums")


@family
def test_reference_parameter_counts(model: str, layers: int) -> None:
    c, initial, _ = reference_case(model, layers)
    per_layer = 4 * 16 * 16 + 2 * 16 * 64 + 64 + 16  # W_Q, W_K, W_V, W_O; W1, W2; b1, b2
    per_layer += {"seed": 2, "gpt2": 4}[model] * 16  # gamma, beta of each LayerNorm
    final = 2 * 16 if model == "gpt2" else 0
    total = sum(a.size for a in initial.values())
    assert total == 6 * 16 + 5 * 16 + layers * per_layer + final + 6 * 16
    assert list(initial) == parameter_names(c)


# ---------------------------------------------------------------------------------------
# The engine against the reference, per family.


@family
def test_parameter_names_follow_the_contract(model: str, layers: int) -> None:
    needs_engine(model, layers)
    case = engine_case(model, layers)
    assert sorted(case.params) == sorted(parameter_names(case.config))
    assert len(case.params) == len(set(case.params))


@family
def test_initialisation_contract(model: str, layers: int) -> None:
    """params.initialize equals random.Random(seed).gauss(0, init_scale), draw for draw."""
    needs_engine(model, layers)
    c = settings(model, layers)
    theirs, mine = params.initialize(c), initialize(c)
    assert sorted(theirs) == sorted(mine)
    for n in mine:
        assert theirs[n].shape == mine[n].shape, n
        np.testing.assert_array_equal(theirs[n], mine[n], err_msg=n)


@family
def test_engine_records_the_spec_activations_and_parameter_gradients(
    model: str, layers: int
) -> None:
    needs_engine(model, layers)
    case = engine_case(model, layers)
    missing = set(spec_activations(case.config)) - set(case.activations)
    assert not missing, f"activations not recorded: {sorted(missing)}"
    missing = {f"d.{p}" for p in case.params} - set(case.grads)
    assert not missing, f"parameter gradients not recorded: {sorted(missing)}"
    missing = {f"{k}.{p}" for k in ADAM_KINDS for p in case.params} - set(case.adam)
    assert not missing, f"AdamW results not recorded: {sorted(missing)}"
    assert len(case.steps) == len(set(case.steps)), "a name recorded twice"


@family
def test_engine_records_the_spec_activation_gradients(model: str, layers: int) -> None:
    needs_engine(model, layers)
    case = engine_case(model, layers)
    missing = {f"d.{n}" for n in spec_activation_grads(case.config)} - set(case.grads)
    assert not missing, f"gradients not recorded: {sorted(missing)}"


@family
def test_every_engine_name_is_known_to_the_reference(model: str, layers: int) -> None:
    needs_engine(model, layers)
    case = engine_case(model, layers)
    unknown = [n for n in case.activations if n not in case.ref.values]
    unknown += [n for n in case.grads if n not in case.ref.grads]
    unknown += [n for n in case.adam if n not in case.ref.adamw]
    assert not unknown, f"names the reference cannot check: {unknown}"


@family
def test_activations(model: str, layers: int) -> None:
    needs_engine(model, layers)
    case = engine_case(model, layers)
    m = masked(case.config)
    bad = []
    for name in case.activations:
        if name not in case.ref.values:
            continue  # reported by test_every_engine_name_is_known_to_the_reference
        mine, theirs = np.asarray(case.trace[name]), case.ref.values[name]
        if head_kind(case.config, name) == "scores" and mine.shape == m.shape:
            if not (np.all(mine[m] == -np.inf) and np.all(theirs[m] == -np.inf)):
                bad.append(f"{name}: masked entries are not all -inf")
            if not np.all(np.isfinite(mine[~m])):
                bad.append(f"{name}: an unmasked entry is not finite")
        elif not np.all(np.isfinite(mine)):
            bad.append(f"{name}: not finite")
        bad.append(mismatch(mine, theirs, name))
    report([b for b in bad if b], "activations")


@family
def test_gradients(model: str, layers: int) -> None:
    needs_engine(model, layers)
    case = engine_case(model, layers)
    m = masked(case.config)
    bad = []
    for name in case.grads:
        if name not in case.ref.grads:
            continue  # reported by test_every_engine_name_is_known_to_the_reference
        mine, theirs = np.asarray(case.trace[name]), case.ref.grads[name]
        if not np.all(np.isfinite(mine)):
            bad.append(f"{name}: not finite")
        bad.append(mismatch(mine, theirs, name))
        is_masked = head_kind(case.config, name) in ("scores", "QK") and mine.shape == m.shape
        if is_masked and not (np.all(mine[m] == 0.0) and np.all(theirs[m] == 0.0)):
            bad.append(f"{name}: masked entries are not exactly 0")
    report([b for b in bad if b], "gradients")


@family
def test_adamw(model: str, layers: int) -> None:
    needs_engine(model, layers)
    case = engine_case(model, layers)
    bad = [mismatch(case.trace[n], case.ref.adamw[n], n) for n in case.adam]
    report([b for b in bad if b], "AdamW results")


@family
def test_adamw_on_the_engines_own_gradients(model: str, layers: int) -> None:
    """AdamW alone: torch.optim.AdamW given exactly the engine's gradients."""
    needs_engine(model, layers)
    case = engine_case(model, layers)
    ours = adamw_step(case.config, case.initial, {p: case.trace[f"d.{p}"] for p in case.params})
    bad = [mismatch(case.trace[n], ours[n], n) for n in case.adam]
    report([b for b in bad if b], "AdamW results")


@family
def test_adamw_actually_moves_every_parameter(model: str, layers: int) -> None:
    """Guards the AdamW comparison against comparing two copies of the old values."""
    needs_engine(model, layers)
    case = engine_case(model, layers)
    for p in case.params:
        moved = case.trace[f"updated.{p}"] != case.initial[p]
        assert moved.all(), f"{p}: {np.count_nonzero(~moved)} values did not change"


@family
def test_initial_parameters_are_not_modified(model: str, layers: int) -> None:
    needs_engine(model, layers)
    case = engine_case(model, layers)
    fresh = params.initialize(case.config)
    for n in case.params:
        np.testing.assert_array_equal(case.initial[n], fresh[n], err_msg=n)
        np.testing.assert_array_equal(case.trace[n], fresh[n], err_msg=n)


def ln_inputs(c: Any) -> dict[str, str]:
    """Each LayerNorm's activation prefix -> the activation it normalises."""
    out: dict[str, str] = {}
    for layer in range(layers_of(c)):
        p = prefix(c, layer)
        if model_of(c) == "seed":
            out[f"{p}ln"] = f"{p}residual"
        else:
            out[f"{p}ln1"] = layer_input(c, layer)
            out[f"{p}ln2"] = f"{p}residual1"
    if model_of(c) == "gpt2":
        out["ln_f"] = f"{prefix(c, layers_of(c) - 1)}residual2"
    return out


def ln_params(c: Any) -> dict[str, str]:
    """Each LayerNorm's activation prefix -> its parameters' prefix."""
    return dict(zip(ln_inputs(c), layer_norms(c), strict=True))


@family
def test_torch_builtins_agree(model: str, layers: int) -> None:
    """The engine's LayerNorms, loss and GELU equal torch's own: functional.layer_norm on
    every LayerNorm's input, functional.cross_entropy, and the tanh (not erf) GELU."""
    needs_engine(model, layers)
    case = engine_case(model, layers)
    c, t = case.config, case.trace
    assert set(ln_inputs(c)) == set(ln_jacobian_outputs(c))
    P = {n: torch.tensor(a) for n, a in case.initial.items()}
    bad = []
    for q, x in ln_inputs(c).items():
        g = ln_params(c)[q]
        ln = functional.layer_norm(
            torch.tensor(t[x]), (c.d_model,), P[f"{g}gamma"], P[f"{g}beta"], eps=c.ln_eps
        )
        bad.append(mismatch(t[f"{q}_out"], ln.numpy(), f"{q}_out vs functional.layer_norm"))
    targets = torch.tensor(c.tokens[1:])
    ce = functional.cross_entropy(torch.tensor(t["logits"][:-1]), targets)
    bad.append(mismatch(t["loss"], ce.numpy(), "loss vs functional.cross_entropy"))
    bad.append(mismatch(t["loss"], case.ref.tensors["loss"].detach().numpy(), "loss"))
    for layer in range(layers):
        p = prefix(c, layer)
        hidden = torch.tensor(t[f"{p}ffn_hidden"])
        tanh = functional.gelu(hidden, approximate="tanh").numpy()
        bad.append(mismatch(t[f"{p}ffn_act"], tanh, f"{p}ffn_act vs tanh GELU"))
        erf = functional.gelu(hidden, approximate="none").numpy()
        if np.allclose(t[f"{p}ffn_act"], erf, rtol=RTOL, atol=ATOL):
            bad.append(f"{p}ffn_act: GELU must be the tanh approximation, not the erf form")
    report([b for b in bad if b], "built-in checks")


@family
def test_engine_loss_is_the_forward_of_run(model: str, layers: int) -> None:
    needs_engine(model, layers)
    case = engine_case(model, layers)
    assert engine.loss(case.config, case.initial) == float(case.trace["loss"])
    assert mismatch(engine.loss(case.config, case.initial), case.ref.values["loss"], "") is None


# ---------------------------------------------------------------------------------------
# The default config, name by name (its names are today's: no prefix).

DEFAULT = engine_case("seed", 1)
DEFAULT_ACTIVATIONS = DEFAULT.activations
DEFAULT_GRADS = DEFAULT.grads


def close(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, rtol=RTOL, atol=ATOL, err_msg=what)


def test_default_names_are_todays() -> None:
    c = DEFAULT.config
    assert prefix(c, 0) == ""
    assert {"X", "Q.0", "scores.1", "attn_out", "residual", "ln_out", "loss"} <= set(
        DEFAULT_ACTIVATIONS
    )
    assert {"d.gamma", "d.beta", "d.W_Q.0", "d.X_Q.0", "d.attn_out_ffn", "d.X"} <= set(
        DEFAULT_GRADS
    )


@pytest.mark.parametrize("name", DEFAULT_ACTIVATIONS)
def test_default_activation(name: str) -> None:
    mine, theirs = DEFAULT.trace[name], DEFAULT.ref.values[name]
    if name.startswith("scores."):
        m = masked(DEFAULT.config)
        assert np.all(mine[m] == -np.inf)
        assert np.all(theirs[m] == -np.inf)
        assert np.all(np.isfinite(mine[~m]))
        close(mine[~m], theirs[~m], name)
    else:
        assert np.all(np.isfinite(mine)), name
    close(mine, theirs, name)


@pytest.mark.parametrize("name", DEFAULT_GRADS)
def test_default_gradient(name: str) -> None:
    mine, theirs = DEFAULT.trace[name], DEFAULT.ref.grads[name]
    assert np.all(np.isfinite(mine)), name
    close(mine, theirs, name)
    if name.startswith(("d.scores.", "d.QK.")):
        m = masked(DEFAULT.config)
        assert np.all(mine[m] == 0.0) and np.all(theirs[m] == 0.0)


@pytest.mark.parametrize("kind", ADAM_KINDS)
@pytest.mark.parametrize("param", DEFAULT.params)
def test_default_adamw(kind: str, param: str) -> None:
    name = f"{kind}.{param}"
    close(DEFAULT.trace[name], DEFAULT.ref.adamw[name], name)
