"""The engine's model rebuilt in PyTorch float64, straight from the specification.

Test-only: the package never imports torch. Nothing here is copied from the engine; the
forward pass is written from the model's definition and the gradients come from autograd
(`loss.backward()` for parameters, `retain_grad()` for every intermediate), so agreement
with the hand-derived backward pass is evidence, not an echo.

The engine also records a few gradients of *paths* rather than tensors: `d.X_Q.0` (the
share of dL/dX that flows through X W_Q.0) and `d.attn_out_ffn` (the share of
dL/d attn_out that flows through the FFN). To get them from autograd, each use of X (and
the FFN's use of attn_out) goes through its own `clone()`, an identity whose gradient is
exactly that path's share. The pieces of the engine's "fast formula" checks are rebuilt
from autograd's gradients in `_auxiliary`.

`adamw_step` runs torch.optim.AdamW on given gradients; `reference` feeds it autograd's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional

from workbook.config import Config

ADAM_KINDS = ("m", "v", "m_hat", "v_hat", "updated")


@dataclass
class Reference:
    """Values by the engine's names: activations, `d.<name>` gradients, AdamW results."""

    values: dict[str, np.ndarray]
    grads: dict[str, np.ndarray]
    adamw: dict[str, np.ndarray]  # torch.optim.AdamW fed autograd's parameter gradients
    tensors: dict[str, torch.Tensor]  # the activations themselves, for torch built-in checks


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().copy()


def _auxiliary(
    c: Config, values: dict[str, np.ndarray], grads: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Helper quantities the engine records on the way to a gradient, from autograd's results.

    Running sums of dL/dX over its paths (Q.0, Q.1, ..., V.last), and the pieces of the
    "fast" LayerNorm and softmax backward formulas the engine shows beside the Jacobians.
    """
    aux: dict[str, np.ndarray] = {}
    paths = [f"d.X_{kind}.{h}" for kind in ("Q", "K", "V") for h in range(c.heads)]
    running = grads[paths[0]]
    for k, path in enumerate(paths[1:], start=1):
        running = running + grads[path]
        aux[f"d.X_sum{k}"] = running
    aux["d.residual_fast"] = grads["d.residual"]
    aux["d.ln_hat_mean"] = grads["d.ln_hat"].mean(axis=1)
    aux["d.ln_hat_xhat"] = grads["d.ln_hat"] * values["ln_hat"]
    aux["d.ln_hat_xhat_mean"] = aux["d.ln_hat_xhat"].mean(axis=1)
    for h in range(c.heads):
        aux[f"d.attn_attn.{h}"] = grads[f"d.attn.{h}"] * values[f"attn.{h}"]
        aux[f"d.attn_attn_sum.{h}"] = aux[f"d.attn_attn.{h}"].sum(axis=1)
        aux[f"d.scores_fast.{h}"] = grads[f"d.scores.{h}"]
    return aux


def reference(c: Config, initial: dict[str, np.ndarray]) -> Reference:
    """One training step of the specified model, in torch float64, from `initial`."""
    P = {n: torch.tensor(a, dtype=torch.float64, requires_grad=True) for n, a in initial.items()}
    acts: dict[str, torch.Tensor] = {}

    def keep(name: str, t: torch.Tensor) -> torch.Tensor:
        t.retain_grad()
        acts[name] = t
        return t

    T = c.T
    tokens = torch.tensor(c.tokens, dtype=torch.long)

    # X = E_token[tokens] + E_pos[0:T]
    e_tok = keep("E_token[tokens]", P["E_token"][tokens])
    e_pos = keep("E_pos[0:T]", P["E_pos"][:T])
    X = keep("X", e_tok + e_pos)

    # Q, K, V per head; each projection reads X through its own identity (see docstring).
    for kind in ("Q", "K", "V"):
        for h in range(c.heads):
            x_path = keep(f"X_{kind}.{h}", X.clone())
            keep(f"{kind}.{h}", x_path @ P[f"W_{kind}.{h}"])

    # S = Q Kᵀ / √d_k, causal mask (column j > row i), A = row softmax, head = A V
    mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)
    heads = []
    for h in range(c.heads):
        qk = keep(f"QK.{h}", acts[f"Q.{h}"] @ acts[f"K.{h}"].T)
        scores = keep(f"scores.{h}", (qk / math.sqrt(c.d_k)).masked_fill(mask, -math.inf))
        attn = keep(f"attn.{h}", torch.softmax(scores, dim=1))
        heads.append(keep(f"head.{h}", attn @ acts[f"V.{h}"]))
    concat = keep("concat", torch.cat(heads, dim=1))
    attn_out = keep("attn_out", concat @ P["W_O"].T)

    # FFN with tanh-GELU; residual = attn_out + ffn_out (no residual around attention)
    ffn_in = keep("attn_out_ffn", attn_out.clone())
    ffn_hidden = keep("ffn_hidden", ffn_in @ P["W1"].T + P["b1"])
    ffn_act = keep("ffn_act", functional.gelu(ffn_hidden, approximate="tanh"))
    ffn_out = keep("ffn_out", ffn_act @ P["W2"].T + P["b2"])
    residual = keep("residual", attn_out + ffn_out)

    # LayerNorm, population variance, eps inside the square root
    mean = keep("ln_mean", residual.mean(dim=1))
    var = keep("ln_var", residual.var(dim=1, correction=0))
    ln_hat = keep("ln_hat", (residual - mean[:, None]) / torch.sqrt(var[:, None] + c.ln_eps))
    ln_out = keep("ln_out", P["gamma"] * ln_hat + P["beta"])

    # logits, softmax, mean cross-entropy over positions 0..T-2 predicting tokens[i+1]
    logits = keep("logits", ln_out @ P["W_lm"].T)
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


def adamw_step(
    c: Config, initial: dict[str, np.ndarray], grads: dict[str, np.ndarray | torch.Tensor]
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
