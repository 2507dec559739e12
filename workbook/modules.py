"""The model's modules, each with its forward and its hand-derived backward side by side.

A module records its steps through a `Recorder`, which knows the current chapter, layer and
head, and so names each result (l1.Q.0) and gives it its symbol (Q^{[2](1)}) by the rules of
`notation`. Shapes use T (tokens), d (d_model), d_k (per head), F (d_ff), V (vocabulary).
A gradient `d.<name>` is dL/d<name>.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np

from .config import Config
from .formulas import FORMULAS
from .notation import adam, grad, marked, word
from .ops import JACOBIANS, softmax_rows
from .params import layered
from .trace import Chapter, Contraction, Desc, Elementwise, Gather, RowWise, Trace


@dataclass(frozen=True)
class Out:
    """A result about to be recorded: its name and description."""

    name: str
    desc: Desc


class Recorder:
    """Computes a result, records it as a described step, and returns it."""

    def __init__(self, trace: Trace, c: Config) -> None:
        self.t, self.c = trace, c
        self.chapter = 0
        self.layer: int | None = None  # the block being recorded (0-based), None outside
        self.head: int | None = None

    # --- where we are ------------------------------------------------------------------
    def begin(self, part: str, title: str, intro: str, **symbols: object) -> None:
        """Start the next chapter; in a model with layers, its title names the layer."""
        topic = title
        if self.layer is not None and layered(self.c):
            title = f"{title} (layer {self.layer + 1})"
        self.chapter = len(self.t.chapters) + 1
        info = Chapter(self.chapter, part, title, intro, self.mark, dict(symbols), topic)
        self.t.chapters.append(info)

    @contextmanager
    def at(self, layer: int | None = None, head: int | None = None) -> Iterator[None]:
        saved = self.layer, self.head
        self.layer = layer if layer is not None else self.layer
        self.head = head
        try:
            yield
        finally:
            self.layer, self.head = saved

    @property
    def mark(self) -> int | None:
        """The layer a symbol shows: none in a model whose names carry no layer."""
        return self.layer if self.layer is not None and layered(self.c) else None

    def n(self, base: str) -> str:
        """The full name of `base` here: l1.Q.0 for Q in layer 1, head 0."""
        pre = f"l{self.layer}." if self.layer is not None and layered(self.c) else ""
        return pre + base + (f".{self.head}" if self.head is not None else "")

    def s(self, tex: str) -> str:
        """A symbol here: its base with the layer and head marks."""
        return marked(tex, self.mark, self.head)

    def out(self, base: str, tex: str, title: str, role: str = "", **kw: str) -> Out:
        h = "" if self.head is None else str(self.head + 1)
        desc = Desc(self.s(tex), title.format(h=h), role or base, self.mark, self.head, **kw)
        return Out(self.n(base), desc)

    def dout(self, of: str, title: str, role: str = "", inner: str = "", **kw: str) -> Out:
        """The gradient of the quantity `of` (a full name), or of a path whose symbol is
        `inner`; rows and columns are labelled as the quantity's are."""
        h = "" if self.head is None else str(self.head + 1)
        base = self.t.desc(of) if of in self.t.values else Desc("")
        labels = {"rows": base.rows, "cols": base.cols} | kw
        desc = Desc(grad(inner or base.symbol), title.format(h=h), role, self.mark, self.head)
        return Out(f"d.{of}", replace(desc, **labels))

    # --- kinds of step -----------------------------------------------------------------
    def matmul(
        self,
        o: Out,
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
        return self.t.add(
            Contraction(o.name, self.chapter, operands, out, o.desc, "matmul", (ta, tb), bias)
        )

    def colsum(self, o: Out, a: str, b: str | None = None) -> np.ndarray:
        """Σ_i a[i, j] (bias gradients) or Σ_i a[i, j] b[i, j] (gamma's gradient)."""
        A = self.t[a]
        out = A.sum(axis=0) if b is None else (A * self.t[b]).sum(axis=0)
        ops = (a,) if b is None else (a, b)
        kind = "colsum" if b is None else "coldot"
        return self.t.add(Contraction(o.name, self.chapter, ops, out, o.desc, kind))

    def jacobian(self, o: Out, dy: str, of: str, inputs: tuple[str, ...], **consts) -> np.ndarray:
        """dx[i] = dy[i] · J[i]: a row-wise Jacobian-vector product; J[i] is the Jacobian
        `of` ("layernorm" or "softmax") formed from row i of `inputs`."""
        rows = zip(*(self.t[n] for n in inputs), strict=True)
        jacobians = np.stack([JACOBIANS[of](*row, **consts) for row in rows])
        out = np.einsum("ik,ikj->ij", self.t[dy], jacobians)
        step = Contraction(
            o.name,
            self.chapter,
            (dy, *inputs),
            out,
            o.desc,
            "jacobian",
            jacobians=jacobians,
            jacobian_of=of,
            jacobian_consts=consts,
        )
        return self.t.add(step)

    def elementwise(
        self,
        o: Out,
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
        f = FORMULAS[formula]
        out = np.broadcast_to(f.compute(*args, **consts), shape).astype(np.float64)
        step = Elementwise(
            o.name,
            self.chapter,
            tuple(operands),
            out,
            o.desc,
            f,
            tuple(operands.values()),
            consts,
            checks,
        )
        return self.t.add(step)

    def rowwise(
        self, o: Out, kind: str, src: str, out: np.ndarray, count: int = 0, mean: str = ""
    ) -> np.ndarray:
        operands = (src, mean) if mean else (src,)
        return self.t.add(RowWise(o.name, self.chapter, operands, out, o.desc, kind, count))

    def gather(
        self, o: Out, kind: str, operands: tuple[str, ...], out: np.ndarray, **kw
    ) -> np.ndarray:
        return self.t.add(Gather(o.name, self.chapter, operands, out, o.desc, kind, **kw))


def causal_mask(T: int) -> np.ndarray:
    return np.triu(np.ones((T, T), dtype=bool), k=1)


# --- modules ------------------------------------------------------------------------------
class Embedding:
    """X = E_token[tokens] + E_pos[0:T]; back: each row of dX to its token and position."""

    def forward(self, r: Recorder) -> str:
        c, t = r.c, r.t
        T = c.T
        r.gather(
            r.out("E_token[tokens]", r"E_{\mathrm{token}}[t]", "Look up the token embeddings"),
            "lookup",
            ("E_token",),
            t["E_token"][np.array(c.tokens)],
            tokens=c.tokens,
        )
        r.gather(
            r.out("E_pos[0:T]", r"E_{\mathrm{pos}}[1{:}T]", "Look up the position embeddings"),
            "lookup",
            ("E_pos",),
            t["E_pos"][:T],
            tokens=tuple(range(T)),
        )
        r.elementwise(
            r.out("X", "X", "Add the position embeddings"),
            "embed",
            {"E_token[tokens]": "ij", "E_pos[0:T]": "ij"},
            (T, c.d_model),
        )
        return "X"

    def backward(self, r: Recorder, dX: str) -> None:
        c = r.c
        d_tok = np.zeros((c.vocab_size, c.d_model))
        np.add.at(d_tok, np.array(c.tokens), r.t[dX])  # a repeated token collects every row
        r.gather(
            r.dout("E_token", "Gradient of the token embeddings", "d.E_token"),
            "scatter",
            (dX,),
            d_tok,
            tokens=c.tokens,
        )
        d_pos = np.zeros((c.max_len, c.d_model))
        d_pos[: c.T] = r.t[dX]
        r.gather(
            r.dout("E_pos", "Gradient of the position embeddings", "d.E_pos"), "pad", (dX,), d_pos
        )


@dataclass
class Attention:
    """Multi-head causal self-attention of `x`, no biases: per head Q, K, V = x W; S = QKᵀ/√d_k
    masked; A = softmax(S); H = A V; then C = [H¹ | H² | …] and attn_out = C W_Oᵀ."""

    x: str  # the input's full name
    layer: int

    KINDS = (("Q", "Queries"), ("K", "Keys"), ("V", "Values"))
    WEIGHTS: ClassVar[dict[str, str]] = {"Q": "query", "K": "key", "V": "value"}

    def w(self, r: Recorder, kind: str, h: int) -> str:
        with r.at(self.layer, h):
            return r.n(f"W_{kind}")

    def project(self, r: Recorder) -> None:
        for kind, what in self.KINDS:
            for h in range(r.c.heads):
                with r.at(self.layer, h):
                    r.matmul(r.out(kind, kind, f"{what} of head {{h}}"), self.x, self.w(r, kind, h))

    def scores(self, r: Recorder) -> None:
        c = r.c
        for h in range(c.heads):
            with r.at(self.layer, h):
                qk = r.out(
                    "QK", r"(QK^{\top})", "Query-key dot products, head {h}", causal="unneeded"
                )
                r.matmul(qk, r.n("Q"), r.n("K"), tb=True)
                r.elementwise(
                    r.out("scores", "S", "Scale and mask, head {h}"),
                    "scale_mask",
                    {qk.name: "ij"},
                    (c.T, c.T),
                    scale=1.0 / math.sqrt(c.d_k),
                    masked=causal_mask(c.T),
                )
                a = r.out("attn", "A", "Softmax: attention weights, head {h}")
                r.rowwise(a, "softmax", r.n("scores"), softmax_rows(r.t[r.n("scores")]))

    def mix(self, r: Recorder) -> str:
        c = r.c
        heads = []
        for h in range(c.heads):
            with r.at(self.layer, h):
                heads.append(r.n("head"))
                r.matmul(r.out("head", "H", "Weighted values, head {h}"), r.n("attn"), r.n("V"))
        with r.at(self.layer):
            concat = np.concatenate([r.t[n] for n in heads], axis=1)
            r.gather(
                r.out("concat", "C", "Concatenate the heads"),
                "concat",
                tuple(heads),
                concat,
                width=c.d_k,
            )
            out = r.out("attn_out", word("attn_out"), "Output projection")
            r.matmul(out, r.n("concat"), r.n("W_O"), tb=True)
            return out.name

    def backward(self, r: Recorder, d_out: str) -> None:
        """From d attn_out to the gradients of W_O and of every head's W_Q, W_K, W_V."""
        c, t = r.c, r.t
        with r.at(self.layer):
            concat, w_o = r.n("concat"), r.n("W_O")
            r.matmul(
                r.dout(w_o, "Gradient of the output projection", "d.W_O"), d_out, concat, ta=True
            )
            r.matmul(r.dout(concat, "Gradient of the concatenated heads", "d.concat"), d_out, w_o)
            d_concat = f"d.{concat}"
        for h in range(c.heads):
            with r.at(self.layer, h):
                Q, K, V, A, head = (r.n(b) for b in ("Q", "K", "V", "attn", "head"))
                d_head = r.dout(head, "Gradient of head {h}", "d.head")
                r.gather(
                    d_head,
                    "slice",
                    (d_concat,),
                    t[d_concat][:, h * c.d_k : (h + 1) * c.d_k],
                    offset=h * c.d_k,
                )
                d_attn = r.dout(A, "Gradient of the attention weights, head {h}", "d.attn")
                r.matmul(d_attn, d_head.name, V, tb=True)
                r.matmul(
                    r.dout(V, "Gradient of the values, head {h}", "d.V"), A, d_head.name, ta=True
                )
                d_scores = r.dout(
                    r.n("scores"),
                    "Through the softmax Jacobian, head {h}",
                    "d.scores",
                    causal="zero",
                )
                r.jacobian(d_scores, d_attn.name, "softmax", (A,))
                # Fast formula: dS = A ⊙ (dA − Σ_k dA_k A_k), row by row.
                both = Out(
                    f"d.{r.n('attn_attn')}",
                    Desc(
                        r.s(r"(\mathrm{d}A{\odot}A)"),
                        f"Fast formula: weight times gradient, head {h + 1}",
                        "d.attn_attn",
                        r.mark,
                        h,
                    ),
                )
                r.elementwise(both, "mul", {d_attn.name: "ij", A: "ij"}, (c.T, c.T))
                total = Out(
                    f"d.{r.n('attn_attn_sum')}",
                    Desc(
                        r.s("r"),
                        f"Fast formula: row sums, head {h + 1}",
                        "d.attn_attn_sum",
                        r.mark,
                        h,
                    ),
                )
                r.rowwise(total, "sum", both.name, t[both.name].sum(axis=1))
                fast = Out(
                    f"d.{r.n('scores_fast')}",
                    Desc(
                        r.s(r"\mathrm{d}S_{\mathrm{fast}}"),
                        f"Fast formula: score gradient again, head {h + 1}",
                        "d.scores_fast",
                        r.mark,
                        h,
                    ),
                )
                r.elementwise(
                    fast,
                    "softmax_backward_fast",
                    {A: "ij", d_attn.name: "ij", total.name: "i"},
                    (c.T, c.T),
                    checks=d_scores.name,
                )
                d_qk = r.dout(r.n("QK"), "Back through the scaling, head {h}", "d.QK")
                r.elementwise(
                    d_qk,
                    "scale",
                    {d_scores.name: "ij"},
                    (c.T, c.T),
                    scale=1.0 / math.sqrt(c.d_k),
                    masked=causal_mask(c.T),
                )
                r.matmul(r.dout(Q, "Gradient of the queries, head {h}", "d.Q"), d_qk.name, K)
                r.matmul(r.dout(K, "Gradient of the keys, head {h}", "d.K"), d_qk.name, Q, ta=True)
        for kind, _ in self.KINDS:
            for h in range(c.heads):
                with r.at(self.layer, h):
                    w = self.w(r, kind, h)
                    title = f"Gradient of the {self.WEIGHTS[kind]} weights, head {{h}}"
                    r.matmul(r.dout(w, title, f"d.W_{kind}"), self.x, f"d.{r.n(kind)}", ta=True)

    def input_grad(self, r: Recorder, into: Out, name: str = "X") -> None:
        """The input feeds Q, K and V of every head: its gradient is the sum of those paths.
        `name` is how the titles call the input."""
        c, t = r.c, r.t
        x_sym = t.symbol(self.x)
        x_base = x_sym if len(x_sym) == 1 else f"{{{x_sym}}}"
        parts = []
        for kind, what in self.KINDS:
            for h in range(c.heads):
                with r.at(self.layer, h):
                    path = Out(
                        f"d.{r.n(f'X_{kind}')}",
                        Desc(
                            grad(rf"{x_base}_{{[{r.s(kind)}]}}"),
                            f"Gradient of {name} through the {what.lower()} of head {h + 1}",
                            f"d.X_{kind}",
                            r.mark,
                            h,
                        ),
                    )
                    parts.append(path.name)
                    r.matmul(path, f"d.{r.n(kind)}", self.w(r, kind, h), tb=True)
        with r.at(self.layer):
            r.elementwise(into, "sum", dict.fromkeys(parts, "ij"), (c.T, c.d_model))


@dataclass
class FeedForward:
    """ffn_hidden = x W1ᵀ + b1 (T, F); ffn_act = GELU(ffn_hidden); ffn_out = ffn_act W2ᵀ + b2."""

    x: str
    layer: int

    def forward(self, r: Recorder) -> str:
        c = r.c
        with r.at(self.layer):
            n = r.n
            hidden = r.out("ffn_hidden", word("ffn_hidden"), "Expansion")
            r.matmul(hidden, self.x, n("W1"), tb=True, bias=n("b1"))
            act = r.out("ffn_act", word("ffn_act"), "GELU")
            r.elementwise(act, "gelu", {hidden.name: "ij"}, (c.T, c.d_ff))
            out = r.out("ffn_out", word("ffn_out"), "Projection back")
            r.matmul(out, act.name, n("W2"), tb=True, bias=n("b2"))
            return out.name

    def backward(self, r: Recorder, d_out: str, into: Out) -> None:
        """From d ffn_out to the weights' gradients and `into`, the input's (share of its)
        gradient."""
        c = r.c
        with r.at(self.layer):
            n = r.n
            r.colsum(r.dout(n("b2"), "Gradient of the second bias", "d.b2"), d_out)
            r.matmul(
                r.dout(n("W2"), "Gradient of the projection weights", "d.W2"),
                d_out,
                n("ffn_act"),
                ta=True,
            )
            d_act = r.dout(n("ffn_act"), "Gradient of the GELU output", "d.ffn_act")
            r.matmul(d_act, d_out, n("W2"))
            d_hidden = r.dout(n("ffn_hidden"), "Through the GELU derivative", "d.ffn_hidden")
            r.elementwise(
                d_hidden, "gelu_backward", {d_act.name: "ij", n("ffn_hidden"): "ij"}, (c.T, c.d_ff)
            )
            r.colsum(r.dout(n("b1"), "Gradient of the first bias", "d.b1"), d_hidden.name)
            r.matmul(
                r.dout(n("W1"), "Gradient of the expansion weights", "d.W1"),
                d_hidden.name,
                self.x,
                ta=True,
            )
            r.matmul(into, d_hidden.name, n("W1"))


@dataclass(frozen=True)
class NormNames:
    """A LayerNorm's activations (`<base>_mean`, …) and symbols: base "ln" for the seed's,
    "ln1", "ln2", "ln_f" for GPT-2's; `sub` marks its symbols (x̂_ln1), "" for none."""

    base: str
    sub: str
    gamma: str
    beta: str

    def tex(self, core: str) -> str:
        return core + (rf"_{{\mathrm{{{self.sub}}}}}" if self.sub else "")


@dataclass
class LayerNorm:
    """x̂ = (x − μ)/√(σ² + ε) row by row (population variance), out = γ ⊙ x̂ + β. Back: dγ, dβ
    and, through each row's Jacobian, dx; the fast formula computes dx again."""

    x: str
    names: NormNames
    layer: int | None

    def symbols(self, r: Recorder) -> dict[str, str]:
        """The symbols its chapters' prose refers to: input, μ, σ², σ̃ = √(σ² + ε), x̂, output,
        γ, β."""
        nn, t = self.names, r.t
        with r.at(self.layer):
            return {
                "x": t.symbol(self.x),
                "mu": r.s(nn.tex(r"\mu")),
                "var": r.s(nn.tex(r"\sigma^2")),
                "sigma": r.s(nn.tex(r"\tilde{\sigma}")),
                "hat": r.s(nn.tex(r"\hat{x}")),
                "out": r.s(word(f"{nn.base}_out")),
                "gamma": t.symbol(nn.gamma),
                "beta": t.symbol(nn.beta),
            }

    def forward(self, r: Recorder) -> str:
        c, nn = r.c, self.names
        with r.at(self.layer):
            x = r.t[self.x]
            mean = r.out(f"{nn.base}_mean", nn.tex(r"\mu"), "Row means", "ln_mean")
            r.rowwise(mean, "mean", self.x, x.mean(axis=1))
            var = r.out(f"{nn.base}_var", nn.tex(r"\sigma^2"), "Row variances", "ln_var")
            r.rowwise(var, "var", self.x, x.var(axis=1), mean=mean.name)
            hat = r.out(f"{nn.base}_hat", nn.tex(r"\hat{x}"), "Normalize", "ln_hat")
            r.elementwise(
                hat,
                "normalize",
                {self.x: "ij", mean.name: "i", var.name: "i"},
                (c.T, c.d_model),
                eps=c.ln_eps,
            )
            out = r.out(f"{nn.base}_out", word(f"{nn.base}_out"), "Scale and shift", "ln_out")
            r.elementwise(
                out, "affine", {hat.name: "ij", nn.gamma: "j", nn.beta: "j"}, (c.T, c.d_model)
            )
            return out.name

    def backward(self, r: Recorder, d_out: str, into: Out, what: str) -> None:
        """`into` is the input's (share of its) gradient, `what` how the fast formula's
        title calls it."""
        c, t, nn = r.c, r.t, self.names
        shape = (c.T, c.d_model)
        with r.at(self.layer):
            hat, var = r.n(f"{nn.base}_hat"), r.n(f"{nn.base}_var")
            r.colsum(r.dout(nn.gamma, "Gradient of the LayerNorm scale", "d.gamma"), d_out, hat)
            r.colsum(r.dout(nn.beta, "Gradient of the LayerNorm shift", "d.beta"), d_out)
            d_hat = r.dout(hat, "Gradient of the normalized values", "d.ln_hat")
            r.elementwise(d_hat, "mul", {d_out: "ij", nn.gamma: "j"}, shape)
            r.jacobian(into, d_hat.name, "layernorm", (hat, var), eps=c.ln_eps)
            # The same gradient by the fast formula (dx̂ − mean(dx̂) − x̂·mean(dx̂ ⊙ x̂)) / σ.
            h = t.symbol(hat)
            fast = (
                (
                    f"{d_hat.name}_mean",
                    rf"\overline{{\mathrm{{d}}{h}}}",
                    "row means of the gradient",
                ),
                (
                    f"{d_hat.name}_xhat",
                    rf"(\mathrm{{d}}{h}{{\odot}}{h})",
                    "gradient times normalized value",
                ),
                (
                    f"{d_hat.name}_xhat_mean",
                    rf"\overline{{\mathrm{{d}}{h}{{\odot}}{h}}}",
                    "row means of that product",
                ),
            )
            (m_name, m_sym, m_t), (x_name, x_sym, x_t), (xm_name, xm_sym, xm_t) = fast

            def aux(name: str, sym: str, what: str, role: str) -> Out:
                return Out(name, Desc(sym, f"Fast formula: {what}", role, r.mark))

            r.rowwise(
                aux(m_name, m_sym, m_t, "d.ln_hat_mean"),
                "mean",
                d_hat.name,
                t[d_hat.name].mean(axis=1),
            )
            r.elementwise(
                aux(x_name, x_sym, x_t, "d.ln_hat_xhat"),
                "mul",
                {d_hat.name: "ij", hat: "ij"},
                shape,
            )
            r.rowwise(
                aux(xm_name, xm_sym, xm_t, "d.ln_hat_xhat_mean"),
                "mean",
                x_name,
                t[x_name].mean(axis=1),
            )
            again = Out(
                f"{into.name}_fast",
                Desc(
                    into.desc.symbol + r"_{\mathrm{fast}}",
                    f"Fast formula: {what} again",
                    "d.ln_in_fast",
                    r.mark,
                ),
            )
            r.elementwise(
                again,
                "ln_backward_fast",
                {d_hat.name: "ij", m_name: "i", hat: "ij", xm_name: "i", var: "i"},
                shape,
                checks=into.name,
                eps=c.ln_eps,
            )


class LMHead:
    """logits = x W_lmᵀ (T, V); p = softmax; the loss is the mean NLL of each next token."""

    def __init__(self, x: str) -> None:
        self.x = x

    def forward(self, r: Recorder) -> None:
        c, t = r.c, r.t
        T = c.T
        logits = r.out("logits", word("logits"), "Logits", cols="vocab")
        r.matmul(logits, self.x, "W_lm", tb=True)
        probs = r.out("probs", "p", "Softmax: next-token probabilities", cols="vocab")
        r.rowwise(probs, "softmax", "logits", softmax_rows(t["logits"]))
        p_target = t["probs"][np.arange(T - 1), np.array(c.tokens[1:])]
        pick = r.out("p_target", r"p_{\mathrm{target}}", "Probability of each correct next token")
        r.gather(pick, "pick", ("probs",), p_target, tokens=c.tokens[1:])
        lpp = r.out("loss_per_position", r"\ell", "Loss at each position")
        r.elementwise(lpp, "nll", {"p_target": "ij"}, (T - 1,))
        loss = r.out("loss", "L", "Mean loss")
        r.rowwise(loss, "mean_loss", lpp.name, np.array(t[lpp.name].mean()), count=T - 1)

    def loss_backward(self, r: Recorder) -> None:
        """dL/dlogits = (probs − onehot) / (T − 1); the last position predicts nothing."""
        c = r.c
        T, V = c.T, c.vocab_size
        target = np.zeros((T, V))
        target[np.arange(T - 1), c.tokens[1:]] = 1.0
        weight = np.zeros((T, V))
        weight[: T - 1] = 1.0 / (T - 1)
        terms = {"target": target, "weight": weight, "count": T - 1}
        r.elementwise(
            r.dout("probs", "Gradient of the probabilities", "d.probs"),
            "probs_backward",
            {"probs": "ij"},
            (T, V),
            **terms,
        )
        r.elementwise(
            r.dout("logits", "Gradient of the logits", "d.logits"),
            "ce_backward",
            {"probs": "ij"},
            (T, V),
            **terms,
        )

    def backward(self, r: Recorder) -> None:
        """dW_lm = d logitsᵀ x (V, d); dx = d logits W_lm (T, d)."""
        r.matmul(
            r.dout("W_lm", "Gradient of the output weights", "d.W_lm"), "d.logits", self.x, ta=True
        )
        r.matmul(r.dout(self.x, "Gradient of the LayerNorm output", "d.ln_out"), "d.logits", "W_lm")


ADAM_TITLES = {
    "m": "First moment",
    "v": "Second moment",
    "m_hat": "Corrected first moment",
    "v_hat": "Corrected second moment",
    "updated": "New value",
}


def adam_out(kind: str, p: str, base: Desc) -> Out:
    """AdamW's result `kind` for parameter p (described by `base`): m[W_Q^{(1)}], …"""
    desc = Desc(
        adam(kind, base.symbol),
        f"{ADAM_TITLES[kind]} of ${base.symbol}$",
        kind,
        base.layer,
        base.head,
        rows=base.rows,
        cols=base.cols,
        of=p,
    )
    return Out(f"{kind}.{p}", desc)


def adamw(r: Recorder, names: list[str]) -> None:
    """One decoupled AdamW step, t = 1, from zero moments, for every parameter in order."""
    c = r.c
    for p in names:
        shape, base = r.t[p].shape, r.t.params[p]
        m, v, m_hat, v_hat = (adam_out(k, p, base) for k in ("m", "v", "m_hat", "v_hat"))
        r.elementwise(m, "adam_m", {f"d.{p}": "ij"}, shape, beta1=c.beta1)
        r.elementwise(v, "adam_v", {f"d.{p}": "ij"}, shape, beta2=c.beta2)
        r.elementwise(m_hat, "adam_m_hat", {m.name: "ij"}, shape, beta1=c.beta1, t=1)
        r.elementwise(v_hat, "adam_v_hat", {v.name: "ij"}, shape, beta2=c.beta2, t=1)
        r.elementwise(
            adam_out("updated", p, base),
            "adam_update",
            {p: "ij", m_hat.name: "ij", v_hat.name: "ij"},
            shape,
            lr=c.lr,
            weight_decay=c.weight_decay,
            eps=c.adam_eps,
        )
