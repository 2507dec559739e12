"""The parameters of each model family: names, shapes, symbols and the seeded initialisation.

Names are a contract, like the export schema. The seed model with one layer uses the seed's
names (W_Q.0, W1, gamma); in every other model each per-layer tensor carries the prefix
l<l>. (l0.W_Q.1, l1.W1), and the gpt2 family names its norms l<l>.ln1.gamma, l<l>.ln2.beta
and, after the last block, ln_f.gamma and ln_f.beta.

Initialisation: random.seed(seed), then gauss(0, init_scale) for every drawn value, each
matrix row by row, in the order E_token, E_pos, then per layer W_Q of each head, W_K of each
head, W_V of each head, W_O, W1, b1, W2, b2, then W_lm. Every LayerNorm starts at gamma = 1,
beta = 0 (not drawn).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from .config import Config
from .notation import marked
from .trace import Desc


@dataclass(frozen=True)
class Param:
    name: str
    shape: tuple[int, ...]
    desc: Desc
    init: str = "draw"  # draw | ones | zeros


def layered(c: Config) -> bool:
    """Do names and symbols carry a layer? Only the seed model with one layer goes without."""
    return not (c.model == "seed" and c.layers == 1)


def prefix(c: Config, layer: int) -> str:
    return f"l{layer}." if layered(c) else ""


def mark_layer(c: Config, layer: int) -> int | None:
    """The layer a symbol shows, or None when the model's names carry none."""
    return layer if layered(c) else None


def norm(c: Config, pre: str, which: str, sub: str, layer: int | None) -> list[Param]:
    """A LayerNorm's gamma and beta: `which` is "" (seed) or "ln1." / "ln2." / "ln_f."."""
    tail = rf"_{{\mathrm{{{sub}}}}}" if sub else ""
    return [
        Param(
            f"{pre}{which}{kind}",
            (c.d_model,),
            Desc(
                marked(rf"\{kind}{tail}", layer, None),
                label(kind + (f" of {which.rstrip('.')}" if which else ""), layer, None),
                layer=layer,
            ),
            init,
        )
        for kind, init in (("gamma", "ones"), ("beta", "zeros"))
    ]


def label(base: str, layer: int | None, head: int | None) -> str:
    """A parameter in words, for a PDF bookmark: "W_Q, layer 2, head 1" (counted from 1)."""
    marks = [
        f"layer {layer + 1}" if layer is not None else "",
        f"head {head + 1}" if head is not None else "",
    ]
    return ", ".join([base, *(m for m in marks if m)])


def layer_params(c: Config, layer: int) -> list[Param]:
    """One block's parameters, in the order of the data flow."""
    pre, mk = prefix(c, layer), mark_layer(c, layer)

    def p(name: str, shape: tuple[int, ...], tex: str, head: int | None = None) -> Param:
        desc = Desc(marked(tex, mk, head), label(name.split(".")[0], mk, head), layer=mk, head=head)
        return Param(pre + name, shape, desc)

    out: list[Param] = norm(c, pre, "ln1.", "ln1", mk) if c.model == "gpt2" else []
    for kind in ("W_Q", "W_K", "W_V"):
        out += [p(f"{kind}.{h}", (c.d_model, c.d_k), kind, h) for h in range(c.heads)]
    out.append(p("W_O", (c.d_model, c.d_model), "W_O"))
    if c.model == "gpt2":
        out += norm(c, pre, "ln2.", "ln2", mk)
    out += [
        p("W1", (c.d_ff, c.d_model), "W_1"),
        p("b1", (c.d_ff,), "b_1"),
        p("W2", (c.d_model, c.d_ff), "W_2"),
        p("b2", (c.d_model,), "b_2"),
    ]
    if c.model == "seed":
        out += norm(c, pre, "", "", mk)
    return out


def specs(c: Config) -> list[Param]:
    """Every parameter, in the order of the data flow (the export's and the workbook's)."""
    out = [
        Param(
            "E_token",
            (c.vocab_size, c.d_model),
            Desc(r"E_{\mathrm{token}}", "E_token", rows="vocab"),
        ),
        Param("E_pos", (c.max_len, c.d_model), Desc(r"E_{\mathrm{pos}}", "E_pos")),
    ]
    for layer in range(c.layers):
        out += layer_params(c, layer)
    if c.model == "gpt2":
        out += norm(c, "", "ln_f.", "f", None)
    out.append(
        Param("W_lm", (c.vocab_size, c.d_model), Desc(r"W_{\mathrm{lm}}", "W_lm", rows="vocab"))
    )
    return out


def describe(c: Config) -> dict[str, Desc]:
    return {p.name: p.desc for p in specs(c)}


def shapes(c: Config) -> dict[str, tuple[int, ...]]:
    return {p.name: p.shape for p in specs(c)}


def names(c: Config) -> list[str]:
    """Parameter names in the order of the data flow."""
    return [p.name for p in specs(c)]


def count(c: Config) -> dict[str, int]:
    return {p.name: int(np.prod(p.shape)) for p in specs(c)}


def draw_order(c: Config) -> list[str]:
    """The drawn parameters in the order the contract draws them (W_O before W1, …)."""
    ps = {p.name: p for p in specs(c)}
    order = ["E_token", "E_pos"]
    for layer in range(c.layers):
        pre = prefix(c, layer)
        for kind in ("W_Q", "W_K", "W_V"):
            order += [f"{pre}{kind}.{h}" for h in range(c.heads)]
        order += [f"{pre}{n}" for n in ("W_O", "W1", "b1", "W2", "b2")]
    order.append("W_lm")
    assert set(order) == {n for n, p in ps.items() if p.init == "draw"}
    return order


def initialize(c: Config) -> dict[str, np.ndarray]:
    """random.seed(seed), then gauss(0, init_scale) for every drawn value, row by row."""
    rng = random.Random(c.seed)
    ps = {p.name: p for p in specs(c)}
    out: dict[str, np.ndarray] = {}
    for name in draw_order(c):
        shape = ps[name].shape
        n = int(np.prod(shape))
        out[name] = np.array([rng.gauss(0.0, c.init_scale) for _ in range(n)]).reshape(shape)
    for name, p in ps.items():
        if p.init != "draw":
            out[name] = (np.ones if p.init == "ones" else np.zeros)(p.shape)
    return {n: out[n] for n in ps}
