"""One training step, recorded as a trace, in the order of the workbook's 13 chapters.

Shapes use T (tokens), d (d_model), d_k (per head), F (d_ff), V (vocabulary).
Gradients are derived by hand; `d.<name>` is dL/d<name>.
"""

from __future__ import annotations

import math

import numpy as np

from . import params
from .config import Config, ConfigError
from .ops import FORMULAS, JACOBIANS, softmax_rows
from .trace import Contraction, Elementwise, Gather, RowWise, Trace

# The AdamW results of parameter p are named "<key>.<p>", in this order.
ADAM_KEYS = ("m", "v", "m_hat", "v_hat", "updated")


class _Recorder:
    """Small helpers that compute a result, record it as a step and return it."""

    def __init__(self, trace: Trace) -> None:
        self.t = trace
        self.chapter = 0

    def matmul(
        self,
        name: str,
        a: str,
        b: str,
        *,
        ta: bool = False,
        tb: bool = False,
        bias: str | None = None,
    ) -> np.ndarray:
        A, B = self.t[a], self.t[b]
        out = (A.T if ta else A) @ (B.T if tb else B)
        if bias is not None:
            out = out + self.t[bias]
        operands = (a, b) if bias is None else (a, b, bias)  # the bias is an input too
        return self.t.add(Contraction(name, self.chapter, operands, out, "matmul", (ta, tb), bias))

    def colsum(self, name: str, a: str, b: str | None = None) -> np.ndarray:
        """Σ_i a[i, j] (bias gradients) or Σ_i a[i, j] b[i, j] (gamma's gradient)."""
        A = self.t[a]
        out = A.sum(axis=0) if b is None else (A * self.t[b]).sum(axis=0)
        ops = (a,) if b is None else (a, b)
        kind = "colsum" if b is None else "coldot"
        return self.t.add(Contraction(name, self.chapter, ops, out, kind))

    def jacobian(
        self, name: str, dy: str, of: str, inputs: tuple[str, ...], **consts
    ) -> np.ndarray:
        """dx[i] = dy[i] · J[i]: a row-wise Jacobian-vector product; J[i] is the Jacobian
        `of` ("layernorm" or "softmax") formed from row i of `inputs`."""
        rows = zip(*(self.t[n] for n in inputs), strict=True)
        jacobians = np.stack([JACOBIANS[of](*row, **consts) for row in rows])
        out = np.einsum("ik,ikj->ij", self.t[dy], jacobians)
        step = Contraction(
            name,
            self.chapter,
            (dy, *inputs),
            out,
            "jacobian",
            jacobians=jacobians,
            jacobian_of=of,
            jacobian_consts=consts,
        )
        return self.t.add(step)

    def elementwise(
        self,
        name: str,
        formula: str,
        operands: dict[str, str],
        shape: tuple,
        checks: str = "",
        **consts,
    ) -> np.ndarray:
        """operands maps name → alignment ("ij", "i", "j" or "" for a scalar); `checks`
        names the step a fast formula computes again."""
        args = []
        for op, how in operands.items():
            arr = self.t[op]
            args.append(arr[:, None] if how == "i" and arr.ndim == 1 and len(shape) == 2 else arr)
        out = np.broadcast_to(FORMULAS[formula](*args, **consts), shape).astype(np.float64)
        step = Elementwise(
            name,
            self.chapter,
            tuple(operands),
            out,
            formula,
            tuple(operands.values()),
            consts,
            checks,
        )
        return self.t.add(step)

    def rowwise(
        self, name: str, kind: str, src: str, out: np.ndarray, count: int = 0, mean: str = ""
    ):
        operands = (src, mean) if mean else (src,)
        return self.t.add(RowWise(name, self.chapter, operands, out, kind, count))

    def gather(
        self, name: str, kind: str, operands: tuple[str, ...], out: np.ndarray, **kw
    ) -> np.ndarray:
        return self.t.add(Gather(name, self.chapter, operands, out, kind, **kw))


def run(c: Config, initial: dict[str, np.ndarray] | None = None) -> Trace:
    """The full step: forward (chapters 1–7), backward (8–12), AdamW (13).

    `initial` replaces the seeded parameters (same names and shapes), e.g. for checks.
    """
    trace = Trace(values=dict(initial if initial is not None else params.initialize(c)))
    r = _Recorder(trace)
    with np.errstate(all="ignore"):  # overflow is reported by check_numbers, in one line
        forward(c, r)
        backward(c, r)
        adamw(c, r)
    return trace


def check_numbers(c: Config, t: Trace) -> None:
    """Refuse settings whose step overflows or saturates: every value finite (masked scores
    apart), and no softmax entry rounded to exactly 0 or 1 in double precision, where the
    chain rule would have nothing left to say. One line naming the setting to change."""
    for step in t.steps:
        value = np.asarray(step.result)
        masked = step.consts.get("masked") if isinstance(step, Elementwise) else None
        live = ~np.broadcast_to(masked, value.shape) if masked is not None else True
        if not np.all(np.isfinite(value) | ~np.asarray(live)):
            raise ConfigError(
                f"init_scale = {c.init_scale:g}: {step.name} overflows (not a finite number); "
                "use a smaller --init-scale"
            )
        if isinstance(step, RowWise) and step.kind == "softmax":
            src = np.asarray(t[step.operands[0]])
            alive = np.isfinite(src)
            several = alive.sum(axis=1, keepdims=True) > 1
            if np.any(alive & several & ((value == 0) | (value == 1))):
                raise ConfigError(
                    f"init_scale = {c.init_scale:g}: the softmax of {step.operands[0]} "
                    "saturates (a probability is exactly 0 or 1); use a smaller --init-scale"
                )


def loss(c: Config, initial: dict[str, np.ndarray]) -> float:
    """The forward pass alone, for finite differences."""
    r = _Recorder(Trace(values=dict(initial)))
    forward(c, r)
    return float(r.t["loss"])


def forward(c: Config, r: _Recorder) -> None:
    t, T, tokens = r.t, c.T, np.array(c.tokens)
    heads = range(c.heads)

    r.chapter = 1  # X = E_token[tokens] + E_pos[0:T]                          (T, d)
    r.gather("E_token[tokens]", "lookup", ("E_token",), t["E_token"][tokens], tokens=c.tokens)
    r.gather("E_pos[0:T]", "lookup", ("E_pos",), t["E_pos"][:T], tokens=tuple(range(T)))
    r.elementwise("X", "embed", {"E_token[tokens]": "ij", "E_pos[0:T]": "ij"}, (T, c.d_model))

    r.chapter = 2  # per head: Q = X W_Q, K = X W_K, V = X W_V                   (T, d_k)
    for kind in ("Q", "K", "V"):
        for h in heads:
            r.matmul(f"{kind}.{h}", "X", f"W_{kind}.{h}")

    r.chapter = 3  # S = Q Kᵀ / √d_k, causal mask, A = softmax(S)                (T, T)
    masked = np.triu(np.ones((T, T), dtype=bool), k=1)
    for h in heads:
        r.matmul(f"QK.{h}", f"Q.{h}", f"K.{h}", tb=True)
        r.elementwise(
            f"scores.{h}",
            "scale_mask",
            {f"QK.{h}": "ij"},
            (T, T),
            scale=1.0 / math.sqrt(c.d_k),
            masked=masked,
        )
        r.rowwise(f"attn.{h}", "softmax", f"scores.{h}", softmax_rows(t[f"scores.{h}"]))

    r.chapter = 4  # head = A V; concat; attn_out = concat W_Oᵀ                  (T, d)
    for h in heads:
        r.matmul(f"head.{h}", f"attn.{h}", f"V.{h}")
    head_names = tuple(f"head.{h}" for h in heads)
    concat = np.concatenate([t[n] for n in head_names], axis=1)
    r.gather("concat", "concat", head_names, concat, width=c.d_k)
    r.matmul("attn_out", "concat", "W_O", tb=True)

    r.chapter = 5  # ffn_hidden = attn_out W1ᵀ + b1 (T, F); GELU; ffn_out = ffn_act W2ᵀ + b2 (T, d)
    r.matmul("ffn_hidden", "attn_out", "W1", tb=True, bias="b1")
    r.elementwise("ffn_act", "gelu", {"ffn_hidden": "ij"}, (T, c.d_ff))
    r.matmul("ffn_out", "ffn_act", "W2", tb=True, bias="b2")

    r.chapter = 6  # residual = attn_out + ffn_out; ln_out = γ ⊙ x̂ + β             (T, d)
    r.elementwise("residual", "add", {"attn_out": "ij", "ffn_out": "ij"}, (T, c.d_model))
    res = t["residual"]
    r.rowwise("ln_mean", "mean", "residual", res.mean(axis=1))
    r.rowwise("ln_var", "var", "residual", res.var(axis=1), mean="ln_mean")
    r.elementwise(
        "ln_hat",
        "normalize",
        {"residual": "ij", "ln_mean": "i", "ln_var": "i"},
        (T, c.d_model),
        eps=c.ln_eps,
    )
    r.elementwise("ln_out", "affine", {"ln_hat": "ij", "gamma": "j", "beta": "j"}, (T, c.d_model))

    r.chapter = 7  # logits = ln_out W_lmᵀ (T, V); probs; loss = mean NLL over positions 0..T−2
    r.matmul("logits", "ln_out", "W_lm", tb=True)
    r.rowwise("probs", "softmax", "logits", softmax_rows(t["logits"]))
    targets = np.array(c.tokens[1:])
    p_target = t["probs"][np.arange(T - 1), targets]
    r.gather("p_target", "pick", ("probs",), p_target, tokens=c.tokens[1:])
    r.elementwise("loss_per_position", "nll", {"p_target": "ij"}, (T - 1,))
    lpp = t["loss_per_position"]
    r.rowwise("loss", "mean_loss", "loss_per_position", np.array(lpp.mean()), count=T - 1)


def backward(c: Config, r: _Recorder) -> None:
    t, T, V = r.t, c.T, c.vocab_size
    heads = range(c.heads)
    sqrt_dk = math.sqrt(c.d_k)

    r.chapter = 8  # dL/dlogits = (probs − onehot) / (T − 1); the last position predicts nothing
    target = np.zeros((T, V))
    target[np.arange(T - 1), c.tokens[1:]] = 1.0
    weight = np.zeros((T, V))
    weight[: T - 1] = 1.0 / (T - 1)
    loss_terms = {"target": target, "weight": weight, "count": T - 1}
    r.elementwise("d.probs", "probs_backward", {"probs": "ij"}, (T, V), **loss_terms)
    r.elementwise("d.logits", "ce_backward", {"probs": "ij"}, (T, V), **loss_terms)

    r.chapter = 9  # dW_lm = d.logitsᵀ ln_out (V, d); d.ln_out = d.logits W_lm (T, d)
    r.matmul("d.W_lm", "d.logits", "ln_out", ta=True)
    r.matmul("d.ln_out", "d.logits", "W_lm")

    r.chapter = 10  # LayerNorm, then the FFN, backward
    r.colsum("d.gamma", "d.ln_out", "ln_hat")
    r.colsum("d.beta", "d.ln_out")
    r.elementwise("d.ln_hat", "mul", {"d.ln_out": "ij", "gamma": "j"}, (T, c.d_model))
    r.jacobian("d.residual", "d.ln_hat", "layernorm", ("ln_hat", "ln_var"), eps=c.ln_eps)
    # The same gradient by the fast formula (dx̂ − mean(dx̂) − x̂·mean(dx̂ ⊙ x̂)) / σ, to compare.
    r.rowwise("d.ln_hat_mean", "mean", "d.ln_hat", t["d.ln_hat"].mean(axis=1))
    r.elementwise("d.ln_hat_xhat", "mul", {"d.ln_hat": "ij", "ln_hat": "ij"}, (T, c.d_model))
    r.rowwise("d.ln_hat_xhat_mean", "mean", "d.ln_hat_xhat", t["d.ln_hat_xhat"].mean(axis=1))
    r.elementwise(
        "d.residual_fast",
        "ln_backward_fast",
        {
            "d.ln_hat": "ij",
            "d.ln_hat_mean": "i",
            "ln_hat": "ij",
            "d.ln_hat_xhat_mean": "i",
            "ln_var": "i",
        },
        (T, c.d_model),
        checks="d.residual",
        eps=c.ln_eps,
    )
    r.elementwise("d.ffn_out", "copy", {"d.residual": "ij"}, (T, c.d_model))
    r.colsum("d.b2", "d.ffn_out")
    r.matmul("d.W2", "d.ffn_out", "ffn_act", ta=True)
    r.matmul("d.ffn_act", "d.ffn_out", "W2")
    r.elementwise(
        "d.ffn_hidden", "gelu_backward", {"d.ffn_act": "ij", "ffn_hidden": "ij"}, (T, c.d_ff)
    )
    r.colsum("d.b1", "d.ffn_hidden")
    r.matmul("d.W1", "d.ffn_hidden", "attn_out", ta=True)
    r.matmul("d.attn_out_ffn", "d.ffn_hidden", "W1")
    # attn_out feeds both the FFN and the residual: the two gradients add.
    r.elementwise("d.attn_out", "add", {"d.residual": "ij", "d.attn_out_ffn": "ij"}, (T, c.d_model))

    r.chapter = 11  # attention backward, head by head
    r.matmul("d.W_O", "d.attn_out", "concat", ta=True)
    r.matmul("d.concat", "d.attn_out", "W_O")
    masked = np.triu(np.ones((T, T), dtype=bool), k=1)
    for h in heads:
        r.gather(
            f"d.head.{h}",
            "slice",
            ("d.concat",),
            t["d.concat"][:, h * c.d_k : (h + 1) * c.d_k],
            offset=h * c.d_k,
        )
        r.matmul(f"d.attn.{h}", f"d.head.{h}", f"V.{h}", tb=True)
        r.matmul(f"d.V.{h}", f"attn.{h}", f"d.head.{h}", ta=True)
        r.jacobian(f"d.scores.{h}", f"d.attn.{h}", "softmax", (f"attn.{h}",))
        # Fast formula: dS = A ⊙ (dA − Σ_k dA_k A_k), row by row.
        r.elementwise(f"d.attn_attn.{h}", "mul", {f"d.attn.{h}": "ij", f"attn.{h}": "ij"}, (T, T))
        r.rowwise(f"d.attn_attn_sum.{h}", "sum", f"d.attn_attn.{h}", t[f"d.attn_attn.{h}"].sum(1))
        r.elementwise(
            f"d.scores_fast.{h}",
            "softmax_backward_fast",
            {f"attn.{h}": "ij", f"d.attn.{h}": "ij", f"d.attn_attn_sum.{h}": "i"},
            (T, T),
            checks=f"d.scores.{h}",
        )
        r.elementwise(
            f"d.QK.{h}",
            "scale",
            {f"d.scores.{h}": "ij"},
            (T, T),
            scale=1.0 / sqrt_dk,
            masked=masked,
        )
        r.matmul(f"d.Q.{h}", f"d.QK.{h}", f"K.{h}")
        r.matmul(f"d.K.{h}", f"d.QK.{h}", f"Q.{h}", ta=True)
    for kind in ("Q", "K", "V"):
        for h in heads:
            r.matmul(f"d.W_{kind}.{h}", "X", f"d.{kind}.{h}", ta=True)

    r.chapter = 12  # X feeds Q, K and V of every head: dX is the sum of all those paths
    parts = []
    for kind in ("Q", "K", "V"):
        for h in heads:
            parts.append(f"d.X_{kind}.{h}")
            r.matmul(parts[-1], f"d.{kind}.{h}", f"W_{kind}.{h}", tb=True)
    r.elementwise("d.X", "sum", dict.fromkeys(parts, "ij"), (T, c.d_model))
    dX = t["d.X"]
    d_tok = np.zeros((V, c.d_model))
    np.add.at(d_tok, np.array(c.tokens), dX)  # a repeated token collects every row it appears in
    r.gather("d.E_token", "scatter", ("d.X",), d_tok, tokens=c.tokens)
    d_pos = np.zeros((c.max_len, c.d_model))
    d_pos[:T] = dX
    r.gather("d.E_pos", "pad", ("d.X",), d_pos)


def adamw(c: Config, r: _Recorder) -> None:
    """One decoupled AdamW step, t = 1, from zero moments."""
    r.chapter = 13
    for name in params.names(c):
        shape = r.t[name].shape
        g = f"d.{name}"
        r.elementwise(f"m.{name}", "adam_m", {g: "ij"}, shape, beta1=c.beta1)
        r.elementwise(f"v.{name}", "adam_v", {g: "ij"}, shape, beta2=c.beta2)
        r.elementwise(f"m_hat.{name}", "adam_m_hat", {f"m.{name}": "ij"}, shape, beta1=c.beta1, t=1)
        r.elementwise(f"v_hat.{name}", "adam_v_hat", {f"v.{name}": "ij"}, shape, beta2=c.beta2, t=1)
        r.elementwise(
            f"updated.{name}",
            "adam_update",
            {name: "ij", f"m_hat.{name}": "ij", f"v_hat.{name}": "ij"},
            shape,
            lr=c.lr,
            weight_decay=c.weight_decay,
            eps=c.adam_eps,
        )
