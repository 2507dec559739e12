"""Parameter shapes and the seed's initialisation, reproduced draw for draw."""

from __future__ import annotations

import random

import numpy as np

from .config import Config


def shapes(c: Config) -> dict[str, tuple[int, ...]]:
    """Every parameter's shape, in the order the values are drawn (gamma, beta last: not drawn)."""
    s: dict[str, tuple[int, ...]] = {
        "E_token": (c.vocab_size, c.d_model),
        "E_pos": (c.max_len, c.d_model),
    }
    for kind in ("W_Q", "W_K", "W_V"):
        for h in range(c.heads):
            s[f"{kind}.{h}"] = (c.d_model, c.d_k)
    s |= {
        "W_O": (c.d_model, c.d_model),
        "W1": (c.d_ff, c.d_model),
        "b1": (c.d_ff,),
        "W2": (c.d_model, c.d_ff),
        "b2": (c.d_model,),
        "W_lm": (c.vocab_size, c.d_model),
        "gamma": (c.d_model,),
        "beta": (c.d_model,),
    }
    return s


# The export's and the workbook's order: as the data flows through the block.
ORDER_KEYS = (
    "E_token",
    "E_pos",
    "W_Q",
    "W_K",
    "W_V",
    "W_O",
    "W1",
    "b1",
    "W2",
    "b2",
    "gamma",
    "beta",
    "W_lm",
)


def names(c: Config) -> list[str]:
    """Parameter names in the order of the data flow (gamma, beta before W_lm)."""
    s = shapes(c)
    return [n for key in ORDER_KEYS for n in s if n.split(".")[0] == key]


def count(c: Config) -> dict[str, int]:
    return {n: int(np.prod(shape)) for n, shape in ((n, shapes(c)[n]) for n in names(c))}


def initialize(c: Config) -> dict[str, np.ndarray]:
    """random.seed(seed), then gauss(0, init_scale) for every drawn value, row by row."""
    rng = random.Random(c.seed)
    out: dict[str, np.ndarray] = {}
    for name, shape in shapes(c).items():
        if name == "gamma":
            out[name] = np.ones(shape)
        elif name == "beta":
            out[name] = np.zeros(shape)
        else:
            n = int(np.prod(shape))
            out[name] = np.array([rng.gauss(0.0, c.init_scale) for _ in range(n)]).reshape(shape)
    return {n: out[n] for n in names(c)}
