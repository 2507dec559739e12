"""One training step of a model family, recorded as a trace: forward, backward, AdamW.

A family lays its modules (`modules`) out in chapters: the seed's 13 for the seed model with
one block, and for deeper models or GPT-2 blocks the chapters follow from the modules in
order. Gradients are derived by hand, module by module; `d.<name>` is dL/d<name>.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import params
from .config import Config, ConfigError
from .modules import (
    Attention,
    Embedding,
    FeedForward,
    LayerNorm,
    LMHead,
    NormNames,
    Out,
    Recorder,
    adamw,
)
from .notation import word
from .trace import Elementwise, RowWise, Trace

# The AdamW results of parameter p are named "<key>.<p>", in this order.
ADAM_KEYS = ("m", "v", "m_hat", "v_hat", "updated")
FORWARD, BACKWARD = "forward", "backward"


def head_backward(r: Recorder, head: LMHead) -> None:
    """The backward pass's first two chapters, the same in every family."""
    r.begin(BACKWARD, "Loss gradients", "loss_grad")
    head.loss_backward(r)
    r.begin(BACKWARD, "Output layer gradients", "lm_grad", x=r.t.symbol(head.x))
    head.backward(r)


class SeedModel:
    """The seed's block, y = LN(A + FFN(A)) with A = MHA(x): no residual around the
    attention. N blocks stack; the last one's y feeds the LM head."""

    def __init__(self, c: Config) -> None:
        self.c = c
        self.embedding = Embedding()
        self.blocks: list[tuple[str, Attention, FeedForward, LayerNorm]] = []

    def forward(self, r: Recorder) -> None:
        c = r.c
        r.begin(FORWARD, "Tokenization and embeddings", "embed")
        x = self.embedding.forward(r)
        for layer in range(c.layers):
            with r.at(layer):
                att = Attention(x, layer)
                r.begin(FORWARD, "Q, K, V projections", "qkv", x=r.t.symbol(x))
                att.project(r)
                r.begin(FORWARD, "Attention scores", "scores")
                att.scores(r)
                r.begin(FORWARD, "Multi-head attention", "mha", residual=False, x=r.t.symbol(x))
                a = att.mix(r)
                ffn = FeedForward(a, layer)
                r.begin(FORWARD, "Feed-forward network", "ffn", x=r.t.symbol(a), residual=False)
                f = ffn.forward(r)
                r.begin(FORWARD, "Residual connection and layer normalization", "residual_ln")
                res = r.out("residual", word("residual"), "Residual connection")
                r.elementwise(res, "add", {a: "ij", f: "ij"}, (c.T, c.d_model))
                names = NormNames("ln", "", r.n("gamma"), r.n("beta"))
                ln = LayerNorm(res.name, names, layer)
                self.blocks.append((x, att, ffn, ln))
                x = ln.forward(r)
        r.begin(FORWARD, "Logits and cross-entropy loss", "logits", x=r.t.symbol(x))
        self.head = LMHead(x)
        self.head.forward(r)

    def backward(self, r: Recorder) -> None:
        c = r.c
        shape = (c.T, c.d_model)
        head_backward(r, self.head)
        d = f"d.{self.head.x}"
        for layer in reversed(range(c.layers)):
            x, att, ffn, ln = self.blocks[layer]
            with r.at(layer):
                r.begin(
                    BACKWARD, "LayerNorm and feed-forward backward", "ln_ffn_back", **ln.symbols(r)
                )
                res, a = ln.x, ffn.x
                into = r.dout(res, "Through the LayerNorm Jacobian", "d.ln_in")
                ln.backward(r, d, into, "the residual gradient")
                d_f = r.dout(r.n("ffn_out"), "Gradient of the FFN output", "d.ffn_out")
                r.elementwise(d_f, "copy", {into.name: "ij"}, shape)
                share = r.dout(
                    r.n("attn_out_ffn"),
                    "Gradient reaching the attention output through the FFN",
                    "d.attn_out_ffn",
                    inner=r.s(r"\mathrm{attn\_out}_{[\mathrm{FFN}]}"),
                )
                ffn.backward(r, d_f.name, share)
                # attn_out feeds both the FFN and the residual: the two gradients add.
                d_a = r.dout(a, "Gradient of the attention output", "d.attn_out")
                r.elementwise(d_a, "add", {into.name: "ij", share.name: "ij"}, shape)
                r.begin(
                    BACKWARD, "Attention backward", "attn_back", x=r.t.symbol(x), to_input=layer > 0
                )
                att.backward(r, d_a.name)
                if layer > 0:
                    d = f"d.{x}"
                    title = "Gradient of the layer input: all paths added"
                    att.input_grad(r, r.dout(x, title, "d.attn_in"), "the layer input")
        r.begin(BACKWARD, "Embedding gradients", "embed_back", paths=True)
        with r.at(0):
            att = self.blocks[0][1]
            att.input_grad(r, r.dout("X", "Gradient of X: all paths added", "d.X"))
        self.embedding.backward(r, "d.X")


@dataclass
class GPT2Block:
    """One pre-LN block's modules, kept from the forward pass for the backward pass."""

    x: str
    ln1: LayerNorm
    att: Attention
    res1: str
    ln2: LayerNorm
    ffn: FeedForward


class GPT2Model:
    """The pre-LN GPT-2 block, h = x + MHA(LN1(x)), y = h + FFN(LN2(h)); after the last
    block a final LayerNorm LN_f, then the LM head."""

    def __init__(self, c: Config) -> None:
        self.c = c
        self.embedding = Embedding()
        self.blocks: list[GPT2Block] = []

    def forward(self, r: Recorder) -> None:
        c = r.c
        shape = (c.T, c.d_model)
        sym = r.t.symbol
        r.begin(FORWARD, "Tokenization and embeddings", "embed")
        x = self.embedding.forward(r)
        for layer in range(c.layers):
            with r.at(layer):
                ln1 = LayerNorm(x, self.norm(r, "ln1"), layer)
                r.begin(
                    FORWARD,
                    "Layer normalization before attention",
                    "pre_ln",
                    final=False,
                    **ln1.symbols(r),
                )
                att = Attention(ln1.forward(r), layer)
                r.begin(FORWARD, "Q, K, V projections", "qkv", x=sym(att.x))
                att.project(r)
                r.begin(FORWARD, "Attention scores", "scores")
                att.scores(r)
                title = "Multi-head attention and residual"
                r.begin(FORWARD, title, "mha", residual=True, x=sym(x))
                a = att.mix(r)
                res1 = r.out("residual1", r"\mathrm{residual}_1", "First residual", "residual1")
                r.elementwise(res1, "add", {x: "ij", a: "ij"}, shape)
                ln2 = LayerNorm(res1.name, self.norm(r, "ln2"), layer)
                title = "Layer normalization before the feed-forward network"
                r.begin(FORWARD, title, "pre_ln", final=False, **ln2.symbols(r))
                ffn = FeedForward(ln2.forward(r), layer)
                title = "Feed-forward network and residual"
                r.begin(FORWARD, title, "ffn", x=sym(ffn.x), residual=True)
                f = ffn.forward(r)
                res2 = r.out("residual2", r"\mathrm{residual}_2", "Second residual", "residual2")
                r.elementwise(res2, "add", {res1.name: "ij", f: "ij"}, shape)
                self.blocks.append(GPT2Block(x, ln1, att, res1.name, ln2, ffn))
                x = res2.name
        self.ln_f = LayerNorm(x, NormNames("ln_f", "f", "ln_f.gamma", "ln_f.beta"), None)
        symbols = self.ln_f.symbols(r)
        r.begin(FORWARD, "Final layer normalization", "pre_ln", final=True, **symbols)
        top = self.ln_f.forward(r)
        r.begin(FORWARD, "Logits and cross-entropy loss", "logits", x=sym(top))
        self.head = LMHead(top)
        self.head.forward(r)

    @staticmethod
    def norm(r: Recorder, which: str) -> NormNames:
        return NormNames(which, which, r.n(f"{which}.gamma"), r.n(f"{which}.beta"))

    def backward(self, r: Recorder) -> None:
        c = r.c
        shape = (c.T, c.d_model)
        head_backward(r, self.head)
        symbols = self.ln_f.symbols(r)
        r.begin(BACKWARD, "Final layer normalization backward", "ln_back", shared=False, **symbols)
        into = r.dout(self.ln_f.x, "Through the LayerNorm Jacobian", "d.ln_in")
        self.ln_f.backward(r, f"d.{self.head.x}", into, "the input gradient")
        for layer in reversed(range(c.layers)):
            b = self.blocks[layer]
            with r.at(layer):
                d_res2 = f"d.{r.n('residual2')}"
                r.begin(BACKWARD, "Feed-forward backward", "ffn_back", x=r.t.symbol(b.ffn.x))
                d_f = r.dout(r.n("ffn_out"), "Gradient of the FFN output", "d.ffn_out")
                r.elementwise(d_f, "copy", {d_res2: "ij"}, shape)
                d_f_in = r.dout(b.ffn.x, "Gradient of the LayerNorm output", "d.ln_out")
                b.ffn.backward(r, d_f.name, d_f_in)
                title = "Second layer normalization backward"
                r.begin(BACKWARD, title, "ln_back", shared=True, **b.ln2.symbols(r))
                share = self.path(r, "residual1_ln2", r"\mathrm{residual}_{1[\mathrm{LN2}]}")
                b.ln2.backward(r, d_f_in.name, share, "the residual's share")
                title = "Gradient of the first residual: both paths added"
                d_res1 = r.dout(b.res1, title, "d.residual1")
                r.elementwise(d_res1, "add", {d_res2: "ij", share.name: "ij"}, shape)
                r.begin(
                    BACKWARD,
                    "Attention backward",
                    "attn_back",
                    x=r.t.symbol(b.att.x),
                    to_input=True,
                )
                d_a = r.dout(r.n("attn_out"), "Gradient of the attention output", "d.attn_out_res")
                r.elementwise(d_a, "copy", {d_res1.name: "ij"}, shape)
                b.att.backward(r, d_a.name)
                title = "Gradient of the LayerNorm output: all paths added"
                b.att.input_grad(r, r.dout(b.att.x, title, "d.attn_in"), "the LayerNorm output")
                title = "First layer normalization backward"
                r.begin(BACKWARD, title, "ln_back", shared=True, **b.ln1.symbols(r))
                x_sym = r.t.symbol(b.x)
                x_base = x_sym if len(x_sym) == 1 else f"{{{x_sym}}}"
                share = self.path(r, "X_ln1", rf"{x_base}_{{[\mathrm{{LN1}}]}}")
                b.ln1.backward(r, f"d.{b.att.x}", share, "the input's share")
                title = "Gradient of the layer input: both paths added"
                d_x = r.dout(b.x, title, "d.block_in")
                r.elementwise(d_x, "add", {d_res1.name: "ij", share.name: "ij"}, shape)
        r.begin(BACKWARD, "Embedding gradients", "embed_back", paths=False)
        self.embedding.backward(r, "d.X")

    @staticmethod
    def path(r: Recorder, base: str, tex: str) -> Out:
        """A share of a gradient that flows through a LayerNorm: d.<layer>.<base>."""
        return r.dout(r.n(base), "Through the LayerNorm Jacobian", "d.ln_in", inner=r.s(tex))


FAMILIES = {"seed": SeedModel, "gpt2": GPT2Model}


def run(c: Config, initial: dict[str, np.ndarray] | None = None) -> Trace:
    """The full step: forward, backward, AdamW, in the chapters of the model's family.

    `initial` replaces the seeded parameters (same names and shapes), e.g. for checks.
    """
    values = dict(initial if initial is not None else params.initialize(c))
    trace = Trace(values=values, params=params.describe(c))
    r = Recorder(trace, c)
    model = FAMILIES[c.model](c)
    with np.errstate(all="ignore"):  # overflow is reported by check_numbers, in one line
        model.forward(r)
        model.backward(r)
        r.begin("optimizer", "AdamW update", "adamw")
        adamw(r, params.names(c))
    return trace


def check_numbers(c: Config, t: Trace) -> None:
    """Refuse settings whose step overflows or saturates: every value finite (masked scores
    apart), and no softmax entry rounded to exactly 0 or 1 in double precision, where the
    chain rule would have nothing left to say. One line naming the setting to change."""
    _check_printable_weights(c, t)
    for step in t.steps:
        value = np.asarray(step.result)
        if not np.all(np.isfinite(value) | t.masked(step.name)):
            raise ConfigError(
                f"init_scale = {c.init_scale:g}: {step.name} overflows (not a finite number); "
                "use a smaller --init-scale"
            )
        if isinstance(step, Elementwise) and step.formula.name == "normalize":
            _check_layernorm(c, np.asarray(t[step.operands[2]]), step.consts["eps"])
        if isinstance(step, RowWise) and step.kind == "softmax":
            src = np.asarray(t[step.operands[0]])
            alive = np.isfinite(src)
            several = alive.sum(axis=1, keepdims=True) > 1
            if np.any(alive & several & ((value == 0) | (value == 1))):
                raise ConfigError(
                    f"init_scale = {c.init_scale:g}: the softmax of {step.operands[0]} "
                    "saturates (a probability is exactly 0 or 1); use a smaller --init-scale"
                )


PRINTED_MIN = 1e-99  # a printed result below this is written as 0 (the rules of arithmetic)
LN_NEGLIGIBLE = 1e-12  # a variance below ε × this changes no printed digit of σ
MIN_LN_EPS_AT_ZERO_VARIANCE = 1e-196  # √ε = 10⁻⁹⁸: printable, with room for rounding


def _check_printable_weights(c: Config, t: Trace) -> None:
    """A weight below 10⁻⁹⁹ prints as 0: with init_scale near 1e-99 the pages would show a
    model of zeros and every result computed from them, while the true step is not."""
    for name in t.params:
        value = np.abs(np.asarray(t[name], dtype=np.float64))
        if np.any((value > 0) & (value < PRINTED_MIN)):
            raise ConfigError(
                f"init_scale = {c.init_scale:g}: weights of {name} are below 10^-99 and would "
                "print as 0; use --init-scale 1e-90 or more"
            )


def _check_layernorm(c: Config, var: np.ndarray, eps: float) -> None:
    """σ = √(σ² + ε) must stay a printable number: a row variance below 10⁻⁹⁹ prints as 0,
    and then √ε itself must stay clear of 10⁻⁹⁹ (ε ≥ 10⁻¹⁹⁶), or the hand chain divides 0
    by 0 and the exact one works in subnormal numbers, losing digits silently."""
    low = var[var < PRINTED_MIN]
    if low.size and float(low.max()) > eps * LN_NEGLIGIBLE:
        # printed as 0, the variance drops out of √(σ² + ε) although it outweighs ε: x̂ would
        # come out orders of magnitude too large
        raise ConfigError(
            f"ln_eps = {eps:g}: with init_scale = {c.init_scale:g} a LayerNorm row's variance "
            f"is {float(low.max()):.1e}, which prints as 0 but is not negligible beside ε; "
            "use a larger --init-scale, or an --ln-eps far above that variance"
        )
    if low.size and eps < MIN_LN_EPS_AT_ZERO_VARIANCE:
        raise ConfigError(
            f"ln_eps = {eps:g}: with init_scale = {c.init_scale:g} a LayerNorm row's variance "
            f"is {float(low.min()):.1e}, printed as 0, and √ε is too small to print; use "
            "--ln-eps 1e-196 or more, or a larger --init-scale"
        )


def loss(c: Config, initial: dict[str, np.ndarray]) -> float:
    """The forward pass alone, for finite differences."""
    trace = Trace(values=dict(initial), params=params.describe(c))
    r = Recorder(trace, c)
    with np.errstate(all="ignore"):
        FAMILIES[c.model](c).forward(r)
    return float(trace["loss"])
