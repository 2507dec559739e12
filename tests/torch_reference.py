"""The engine's models rebuilt in PyTorch float64, straight from the specification.

Test-only: the package never imports torch. Nothing here is copied from the engine; the
forward pass is written from the models' definitions and the gradients come from autograd
(`loss.backward()` for parameters, `retain_grad()` for every intermediate), so agreement
with the hand-derived backward pass is evidence, not an echo.

Two families, N = `layers` blocks each (T tokens, d = d_model, H heads of d_k = d/H):

- seed: A = MHA(x); residual = A + FFN(A); y = LN(residual) (no residual around
  attention); logits = y_last W_lmᵀ.
- gpt2 (pre-LN): residual1 = x + MHA(LN1(x)); residual2 = residual1 + FFN(LN2(residual1));
  y = residual2; logits = LN_f(y_last) W_lmᵀ.

Names carry the prefix P = "" for the seed model with one layer (today's names), otherwise
P = "l<l>." for layer l. Layer l reads X (l = 0) or the previous layer's output
(`l<l-1>.ln_out` for seed, `l<l-1>.residual2` for gpt2).

The engine also records gradients of *paths* rather than tensors: `d.<P>X_Q.0` (the share
of d(attention input) that flows through that head's projection), `d.<P>attn_out_ffn`
(seed: the share of d attn_out through the FFN), `d.<P>residual1_ln2` and `d.<P>X_ln1`
(gpt2: the shares of d residual1 and of d(layer input) through LN2 and LN1). To get them
from autograd, each such use goes through its own `clone()`, an identity whose gradient
is exactly that path's share. The pieces of the engine's "fast formula" checks are rebuilt
from autograd's gradients in `_auxiliary`.

`builtin_loss` is a second, independent formulation of the same forward pass from torch's
own layers (functional.layer_norm, scaled_dot_product_attention, linear, cross_entropy),
used to validate `reference` without the engine.

`adamw_step` runs torch.optim.AdamW on given gradients; `reference` feeds it autograd's.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch.nn import functional

from workbook.config import Config

ADAM_KINDS = ("m", "v", "m_hat", "v_hat", "updated")
MODELS = ("seed", "gpt2")


def model_of(c: Any) -> str:
    return getattr(c, "model", "seed")


def layers_of(c: Any) -> int:
    return getattr(c, "layers", 1)


def prefix(c: Any, layer: int) -> str:
    """The name prefix of layer `layer`: "" only for the one-layer seed model."""
    return "" if model_of(c) == "seed" and layers_of(c) == 1 else f"l{layer}."


class Settings:
    """A Config seen with `model` and `layers` laid over it: for the reference alone, while
    the package's Config does not have those fields yet."""

    def __init__(self, base: Config, model: str, layers: int) -> None:
        assert model in MODELS and layers >= 1
        self._base, self.model, self.layers = base, model, layers

    def __getattr__(self, name: str) -> Any:
        return getattr(self._base, name)

    def __repr__(self) -> str:
        return f"Settings(model={self.model!r}, layers={self.layers})"


def layer_norms(c: Any) -> list[str]:
    """Every LayerNorm's parameter prefix ("<q>.gamma"/"<q>.beta", or bare for seed×1)."""
    if model_of(c) == "seed":
        return [prefix(c, layer) for layer in range(layers_of(c))]
    lns = [f"l{layer}.{k}." for layer in range(layers_of(c)) for k in ("ln1", "ln2")]
    return [*lns, "ln_f."]


def drawn_shapes(c: Any) -> dict[str, tuple[int, ...]]:
    """The drawn parameters' shapes, in the initialisation contract's order."""
    d, d_k, F, V = c.d_model, c.d_k, c.d_ff, c.vocab_size
    s: dict[str, tuple[int, ...]] = {"E_token": (V, d), "E_pos": (c.max_len, d)}
    for layer in range(layers_of(c)):
        p = prefix(c, layer)
        for kind in ("W_Q", "W_K", "W_V"):
            for h in range(c.heads):
                s[f"{p}{kind}.{h}"] = (d, d_k)
        s |= {f"{p}W_O": (d, d), f"{p}W1": (F, d), f"{p}b1": (F,), f"{p}W2": (d, F)}
        s[f"{p}b2"] = (d,)
    s["W_lm"] = (V, d)
    return s


def parameter_names(c: Any) -> list[str]:
    """All parameter names (drawn ones in drawing order, then every gamma and beta)."""
    lns = [f"{q}{k}" for q in layer_norms(c) for k in ("gamma", "beta")]
    return [*drawn_shapes(c), *lns]


def initialize(c: Any) -> dict[str, np.ndarray]:
    """The initialisation contract: random.Random(seed).gauss(0, init_scale) for every drawn
    value, each matrix row by row, in `drawn_shapes` order; gamma = 1, beta = 0."""
    rng = random.Random(c.seed)
    out: dict[str, np.ndarray] = {}
    for name, shape in drawn_shapes(c).items():
        n = math.prod(shape)
        out[name] = np.array([rng.gauss(0.0, c.init_scale) for _ in range(n)]).reshape(shape)
    for q in layer_norms(c):
        out[f"{q}gamma"] = np.ones(c.d_model)
        out[f"{q}beta"] = np.zeros(c.d_model)
    return out


@dataclass
class Reference:
    """Values by the engine's names: activations, `d.<name>` gradients, AdamW results."""

    values: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    adamw: dict[str, np.ndarray]  # torch.optim.AdamW fed autograd's parameter gradients
    tensors: dict[str, torch.Tensor]  # the activations themselves, for torch built-in checks


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().copy()


def ln_jacobian_outputs(c: Any) -> dict[str, str]:
    """Each LayerNorm's activation prefix q -> the gradient its Jacobian product yields."""
    out: dict[str, str] = {}
    for layer in range(layers_of(c)):
        p = prefix(c, layer)
        if model_of(c) == "seed":
            out[f"{p}ln"] = f"d.{p}residual"
        else:
            out[f"{p}ln1"] = f"d.{p}X_ln1"
            out[f"{p}ln2"] = f"d.{p}residual1_ln2"
    if model_of(c) == "gpt2":
        out["ln_f"] = f"d.{prefix(c, layers_of(c) - 1)}residual2"
    return out


def _auxiliary(
    c: Any, values: dict[str, np.ndarray], grads: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Helper quantities the engine records on the way to a gradient, from autograd's results.

    Per layer: running sums of d(attention input) over its paths (Q.0, Q.1, ..., V.last),
    and the pieces of the "fast" LayerNorm and softmax backward formulas the engine shows
    beside the Jacobians.
    """
    aux: dict[str, np.ndarray] = {}
    for layer in range(layers_of(c)):
        p = prefix(c, layer)
        paths = [f"d.{p}X_{kind}.{h}" for kind in ("Q", "K", "V") for h in range(c.heads)]
        running = grads[paths[0]]
        for k, path in enumerate(paths[1:], start=1):
            running = running + grads[path]
            aux[f"d.{p}X_sum{k}"] = running
        for h in range(c.heads):
            aux[f"d.{p}attn_attn.{h}"] = grads[f"d.{p}attn.{h}"] * values[f"{p}attn.{h}"]
            aux[f"d.{p}attn_attn_sum.{h}"] = aux[f"d.{p}attn_attn.{h}"].sum(axis=1)
            aux[f"d.{p}scores_fast.{h}"] = grads[f"d.{p}scores.{h}"]
    for q, jacobian in ln_jacobian_outputs(c).items():
        aux[f"{jacobian}_fast"] = grads[jacobian]
        aux[f"d.{q}_hat_mean"] = grads[f"d.{q}_hat"].mean(axis=1)
        aux[f"d.{q}_hat_xhat"] = grads[f"d.{q}_hat"] * values[f"{q}_hat"]
        aux[f"d.{q}_hat_xhat_mean"] = aux[f"d.{q}_hat_xhat"].mean(axis=1)
    return aux


def reference(c: Any, initial: dict[str, np.ndarray]) -> Reference:
    """One training step of the specified model, in torch float64, from `initial`."""
    assert set(initial) == set(parameter_names(c)), "parameters do not match the contract"
    P = {n: torch.tensor(a, dtype=torch.float64, requires_grad=True) for n, a in initial.items()}
    acts: dict[str, torch.Tensor] = {}
    model = model_of(c)
    assert model in MODELS, model

    def keep(name: str, t: torch.Tensor) -> torch.Tensor:
        assert name not in acts, name
        t.retain_grad()
        acts[name] = t
        return t

    T = c.T
    tokens = torch.tensor(c.tokens, dtype=torch.long)
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)  # column j > row i

    def layer_norm(q: str, x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor):
        """Population variance, eps inside the square root; activations q_mean ... q_out."""
        mean = keep(f"{q}_mean", x.mean(dim=1))
        var = keep(f"{q}_var", x.var(dim=1, correction=0))
        hat = keep(f"{q}_hat", (x - mean[:, None]) / torch.sqrt(var[:, None] + c.ln_eps))
        return keep(f"{q}_out", gamma * hat + beta)

    def attention(p: str, a: torch.Tensor) -> torch.Tensor:
        # Q, K, V per head; each projection reads `a` through its own identity.
        for kind in ("Q", "K", "V"):
            for h in range(c.heads):
                a_path = keep(f"{p}X_{kind}.{h}", a.clone())
                keep(f"{p}{kind}.{h}", a_path @ P[f"{p}W_{kind}.{h}"])
        # S = Q Kᵀ / √d_k, causal mask, A = row softmax, head = A V
        heads = []
        for h in range(c.heads):
            qk = keep(f"{p}QK.{h}", acts[f"{p}Q.{h}"] @ acts[f"{p}K.{h}"].T)
            scores = (qk / math.sqrt(c.d_k)).masked_fill(mask, -math.inf)
            attn = keep(f"{p}attn.{h}", torch.softmax(keep(f"{p}scores.{h}", scores), dim=1))
            heads.append(keep(f"{p}head.{h}", attn @ acts[f"{p}V.{h}"]))
        concat = keep(f"{p}concat", torch.cat(heads, dim=1))
        return keep(f"{p}attn_out", concat @ P[f"{p}W_O"].T)

    def ffn(p: str, a: torch.Tensor) -> torch.Tensor:
        hidden = keep(f"{p}ffn_hidden", a @ P[f"{p}W1"].T + P[f"{p}b1"])
        act = keep(f"{p}ffn_act", functional.gelu(hidden, approximate="tanh"))
        return keep(f"{p}ffn_out", act @ P[f"{p}W2"].T + P[f"{p}b2"])

    # X = E_token[tokens] + E_pos[0:T]
    e_tok = keep("E_token[tokens]", P["E_token"][tokens])
    e_pos = keep("E_pos[0:T]", P["E_pos"][:T])
    x = keep("X", e_tok + e_pos)

    for layer in range(layers_of(c)):
        p = prefix(c, layer)
        if model == "seed":
            attn_out = attention(p, x)
            ffn_out = ffn(p, keep(f"{p}attn_out_ffn", attn_out.clone()))
            residual = keep(f"{p}residual", attn_out + ffn_out)
            x = layer_norm(f"{p}ln", residual, P[f"{p}gamma"], P[f"{p}beta"])
        else:
            x_ln1 = keep(f"{p}X_ln1", x.clone())
            ln1 = layer_norm(f"{p}ln1", x_ln1, P[f"{p}ln1.gamma"], P[f"{p}ln1.beta"])
            residual1 = keep(f"{p}residual1", x + attention(p, ln1))
            r_ln2 = keep(f"{p}residual1_ln2", residual1.clone())
            ln2 = layer_norm(f"{p}ln2", r_ln2, P[f"{p}ln2.gamma"], P[f"{p}ln2.beta"])
            x = keep(f"{p}residual2", residual1 + ffn(p, ln2))
    if model == "gpt2":
        x = layer_norm("ln_f", x, P["ln_f.gamma"], P["ln_f.beta"])

    # logits, softmax, mean cross-entropy over positions 0..T-2 predicting tokens[i+1]
    logits = keep("logits", x @ P["W_lm"].T)
    probs = keep("probs", torch.softmax(logits, dim=1))
    p_target = keep("p_target", probs[torch.arange(T - 1), tokens[1:]])
    per_position = keep("loss_per_position", -torch.log(p_target))
    loss = keep("loss", per_position.mean())
    loss.backward()

    values = {n: _np(t) for n, t in acts.items()}
    grads = {f"d.{n}": _np(t.grad) for n, t in acts.items() if t.grad is not None}
    grads |= {f"d.{n}": _np(t.grad) for n, t in P.items()}
    grads |= _auxiliary(c, values, grads)

    adam = adamw_step(c, initial, {n: t.grad for n, t in P.items()})
    return Reference(values=values, grads=grads, adamw=adam, tensors=acts)


def builtin_loss(c: Any, P: dict[str, torch.Tensor]) -> torch.Tensor:
    """The same forward pass from torch's own layers, written a second way: all heads at once
    through scaled_dot_product_attention (is_causal), functional.layer_norm, functional.linear
    and functional.cross_entropy. `P` maps parameter names to tensors."""
    T, H, d_k = c.T, c.heads, c.d_k
    model = model_of(c)
    tokens = torch.tensor(c.tokens, dtype=torch.long)
    x = functional.embedding(tokens, P["E_token"]) + P["E_pos"][:T]

    def mha(p: str, a: torch.Tensor) -> torch.Tensor:
        def split(kind: str) -> torch.Tensor:  # [H, T, d_k]
            W = torch.cat([P[f"{p}W_{kind}.{h}"] for h in range(H)], dim=1)  # [d, d]
            return (a @ W).view(T, H, d_k).transpose(0, 1)

        out = functional.scaled_dot_product_attention(
            split("Q"), split("K"), split("V"), is_causal=True
        )
        return functional.linear(out.transpose(0, 1).reshape(T, H * d_k), P[f"{p}W_O"])

    def ffn(p: str, a: torch.Tensor) -> torch.Tensor:
        hidden = functional.linear(a, P[f"{p}W1"], P[f"{p}b1"])
        return functional.linear(
            functional.gelu(hidden, approximate="tanh"), P[f"{p}W2"], P[f"{p}b2"]
        )

    def ln(q: str, a: torch.Tensor) -> torch.Tensor:
        return functional.layer_norm(a, (c.d_model,), P[f"{q}gamma"], P[f"{q}beta"], c.ln_eps)

    for layer in range(layers_of(c)):
        p = prefix(c, layer)
        if model == "seed":
            a = mha(p, x)
            x = ln(p, a + ffn(p, a))
        else:
            x = x + mha(p, ln(f"{p}ln1.", x))
            x = x + ffn(p, ln(f"{p}ln2.", x))
    if model == "gpt2":
        x = ln("ln_f.", x)
    logits = functional.linear(x, P["W_lm"])
    return functional.cross_entropy(logits[:-1], tokens[1:])


def adamw_step(
    c: Any, initial: dict[str, np.ndarray], grads: dict[str, np.ndarray | torch.Tensor]
) -> dict[str, np.ndarray]:
    """torch.optim.AdamW, one step from zero moments, on `initial` with gradients `grads`.

    Keys `m.<p>`, `v.<p>`, `m_hat.<p>`, `v_hat.<p>` (bias-corrected, from torch's moments)
    and `updated.<p>`; `grads` is keyed by parameter name.
    """
    P = {n: torch.tensor(a, dtype=torch.float64) for n, a in initial.items()}
    for n, p in P.items():
        p.grad = torch.as_tensor(grads[n], dtype=torch.float64).detach().clone()
    opt = torch.optim.AdamW(
        list(P.values()),
        lr=c.lr,
        betas=(c.beta1, c.beta2),
        eps=c.adam_eps,
        weight_decay=c.weight_decay,
    )
    opt.step()
    out: dict[str, np.ndarray] = {}
    for n, p in P.items():
        state = opt.state[p]
        step = float(state["step"])
        assert step == 1.0
        out[f"m.{n}"] = _np(state["exp_avg"])
        out[f"v.{n}"] = _np(state["exp_avg_sq"])
        out[f"m_hat.{n}"] = out[f"m.{n}"] / (1.0 - c.beta1**step)
        out[f"v_hat.{n}"] = out[f"v.{n}"] / (1.0 - c.beta2**step)
        out[f"updated.{n}"] = _np(p)
    return out
