"""Derivations: each derived formula checked symbolically against the derivative of its
forward formula (sympy, small sizes) and against the engine's code; the finite differences;
the numbering and keys of the derivation exercises; each instance against the printed page."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
import sympy as sp
from conftest import read_pdf_text
from glyphs import collisions
from proofread import split_top

from workbook import cli, engine, hand, ops
from workbook.config import Config, from_mapping
from workbook.hand import sig
from workbook.printed import Book
from workbook.render import Answers, Exercises, Options
from workbook.render import derivations as dv
from workbook.render.base import book_numbers, derivation_numbers, exercise_numbers
from workbook.render.fmt import Fmt

N = 4  # entries of a row in the symbolic checks


def delta(j: int, k: int) -> int:
    return int(j == k)


def same(a: sp.Expr, b: sp.Expr) -> bool:
    return sp.simplify(a - b) == 0


# --- the formulas, symbolically -------------------------------------------------------------
def test_softmax_jacobian_by_the_quotient_rule() -> None:
    z = sp.symbols(f"z0:{N}", real=True)
    Z = sum(sp.exp(x) for x in z)
    p = [sp.exp(x) / Z for x in z]
    for j in range(N):
        for k in range(N):
            assert same(sp.diff(p[j], z[k]), p[j] * (delta(j, k) - p[k]))
    for k in range(N):  # each column of the Jacobian adds up to 0
        assert same(sum(sp.diff(p[j], z[k]) for j in range(N)), 0)
    # the engine's Jacobian (output j, input k) is the same matrix
    values = {x: v for x, v in zip(z, (0.3, -1.2, 0.7, 0.1), strict=True)}
    J = np.array([[float(sp.diff(p[j], z[k]).subs(values)) for k in range(N)] for j in range(N)])
    a = ops.softmax_rows(np.array([[values[x] for x in z]]))[0]
    np.testing.assert_allclose(ops.softmax_jacobian(a), J, rtol=1e-12)


def test_softmax_with_cross_entropy_collapses_to_p_minus_y() -> None:
    z = sp.symbols(f"z0:{N}", real=True)
    m = sp.Symbol("m", positive=True)  # T − 1, the predicting positions
    Z = sum(sp.exp(x) for x in z)
    p = [sp.exp(x) / Z for x in z]
    c = 2  # the correct next token's column
    loss = -sp.log(p[c]) / m
    y = [delta(j, c) for j in range(N)]
    for k in range(N):
        assert same(sp.diff(loss, z[k]), (p[k] - y[k]) / m)
        # the long route: dp (only its target entry is not zero) through the Jacobian
        dp = [-y[j] / (m * p[j]) for j in range(N)]
        route = sum(dp[j] * p[j] * (delta(j, k) - p[k]) for j in range(N))
        assert same(route, (p[k] - y[k]) / m)


def layernorm_row():
    x = sp.symbols(f"x0:{N}", real=True)
    eps = sp.Symbol("epsilon", positive=True)
    mu = sum(x) / N
    var = sum((xi - mu) ** 2 for xi in x) / N
    sigma = sp.sqrt(var + eps)
    hat = [(xi - mu) / sigma for xi in x]
    return x, eps, mu, var, sigma, hat


def test_layernorm_steps_jacobian_and_fast_formula() -> None:
    x, eps, mu, var, sigma, hat = layernorm_row()
    for k in range(N):
        assert same(sp.diff(mu, x[k]), sp.Rational(1, N))
        assert same(sp.diff(var, x[k]), sp.Rational(2, N) * (x[k] - mu))
        assert same(sp.diff(sigma, x[k]), hat[k] / N)
    J = [[sp.diff(hat[j], x[k]) for k in range(N)] for j in range(N)]
    for j in range(N):
        for k in range(N):
            derived = (delta(j, k) - sp.Rational(1, N) - hat[j] * hat[k] / N) / sigma
            assert same(J[j][k], derived)
    dy = sp.symbols(f"g0:{N}", real=True)
    mean = sum(dy) / N
    mean_x = sum(d * h for d, h in zip(dy, hat, strict=True)) / N
    for k in range(N):
        through = sum(dy[j] * J[j][k] for j in range(N))
        assert same(through, (dy[k] - mean - hat[k] * mean_x) / sigma)
    # the engine's Jacobian at numbers
    point = {xi: v for xi, v in zip(x, (0.4, -0.1, 0.25, -0.9), strict=True)} | {eps: 1e-5}
    want = np.array([[float(J[j][k].subs(point)) for k in range(N)] for j in range(N)])
    xs = np.array([point[xi] for xi in x])
    got = ops.layernorm_jacobian((xs - xs.mean()) / np.sqrt(xs.var() + 1e-5), xs.var(), 1e-5)
    np.testing.assert_allclose(got, want, rtol=1e-10)


def test_gelu_derivative_of_the_tanh_form() -> None:
    x = sp.Symbol("x", real=True)
    c = sp.Rational(str(hand.GELU_C))  # 0.044715 exactly
    u = sp.sqrt(2 / sp.pi) * (x + c * x**3)
    gelu = x / 2 * (1 + sp.tanh(u))
    dc = sp.Rational(str(hand.GELU_DC))
    assert dc == 3 * c
    derived = (1 + sp.tanh(u)) / 2 + x / 2 * (1 - sp.tanh(u) ** 2) * sp.sqrt(2 / sp.pi) * (
        1 + dc * x**2
    )
    assert same(sp.diff(gelu, x), derived)
    for v in (-2.5, -0.3, 0.0, 0.8, 3.1):
        assert float(derived.subs(x, v)) == pytest.approx(float(ops.gelu_grad(np.array(v))))


def test_matrix_product_rules_both_forms_and_the_bias() -> None:
    X = sp.Matrix(3, 4, sp.symbols("x0:12", real=True))
    G = sp.Matrix(3, 2, sp.symbols("g0:6", real=True))  # the upstream gradient dY
    b = sp.Matrix(1, 2, sp.symbols("b0:2", real=True))
    W = sp.Matrix(4, 2, sp.symbols("w0:8", real=True))  # Y = X W (queries, keys, values)
    L = (G.multiply_elementwise(X * W)).values()

    def grad(loss, M: sp.Matrix) -> sp.Matrix:
        return M.applyfunc(lambda e: sp.diff(loss, e))

    loss = sum(L)
    assert sp.simplify(grad(loss, W) - X.T * G) == sp.zeros(4, 2)
    assert sp.simplify(grad(loss, X) - G * W.T) == sp.zeros(3, 4)
    Wt = sp.Matrix(2, 4, sp.symbols("v0:8", real=True))  # Y = X Wᵀ + b (logits, the FFN)
    Y = X * Wt.T + sp.ones(3, 1) * b
    loss = sum(G.multiply_elementwise(Y).values())
    assert sp.simplify(grad(loss, Wt) - G.T * X) == sp.zeros(2, 4)
    assert sp.simplify(grad(loss, X) - G * Wt) == sp.zeros(3, 4)
    assert sp.simplify(grad(loss, b) - sp.ones(1, 3) * G) == sp.zeros(1, 2)  # column sums


def test_attention_row_sums_zero_and_the_scaling_passes_back() -> None:
    s = sp.symbols(f"s0:{N}", real=True)
    Z = sum(sp.exp(x) for x in s)
    A = [sp.exp(x) / Z for x in s]
    dA = sp.symbols(f"a0:{N}", real=True)
    r = sum(d * a for d, a in zip(dA, A, strict=True))
    dS = [sum(dA[j] * A[j] * (delta(j, k) - A[k]) for j in range(N)) for k in range(N)]
    for k in range(N):
        assert same(dS[k], A[k] * (dA[k] - r))  # the fast formula
    assert same(sum(dS), 0)
    q, d_k, g = sp.symbols("q d_k g", positive=True)
    S = q / sp.sqrt(d_k)
    assert same(sp.diff(g * S, q), g / sp.sqrt(d_k))  # the same 1/√d_k, not undone


def test_a_lookups_gradient_is_a_scatter_add_with_repeated_tokens_adding() -> None:
    E = sp.Matrix(4, 2, sp.symbols("e0:8", real=True))
    tokens = (1, 3, 1)  # token 1 twice
    G = sp.Matrix(3, 2, sp.symbols("g0:6", real=True))
    X = sp.Matrix([[E[t, j] for j in range(2)] for t in tokens])
    loss = sum(G.multiply_elementwise(X).values())
    dE = E.applyfunc(lambda e: sp.diff(loss, e))
    for v in range(4):
        want = sum((G[i, :] for i, t in enumerate(tokens) if t == v), sp.zeros(1, 2))
        assert dE[v, :] == want


def test_adamw_at_t1_and_the_bias_correction() -> None:
    g, b1, b2, lr, eps = sp.symbols("g beta1 beta2 eta epsilon", positive=True)
    m = (1 - b1) * g
    v = (1 - b2) * g**2
    m_hat, v_hat = m / (1 - b1), v / (1 - b2)
    assert same(m_hat, g) and same(v_hat, g**2)
    gr = sp.Symbol("g", real=True)
    step = lr * gr / (sp.sqrt(gr**2) + eps)
    assert same(step, lr * gr / (sp.Abs(gr) + eps))
    # a constant gradient: m_t = (1 − β1^t) g, whatever t
    mt = 0
    for t in range(1, 6):
        mt = b1 * mt + (1 - b1) * g
        assert same(mt, (1 - b1**t) * g)


# --- the finite differences -------------------------------------------------------------------
def test_centred_differences_agree_with_the_gradient_to_four_digits(trace, book) -> None:
    rows = dv.finite_differences(Config(), trace, book)
    assert [r.param for r in rows] == ["W_lm", "W1", "E_token"]
    for r in rows:
        assert r.agree >= 4, r
        assert r.printed == book.num(r.grad, r.idx)  # the chapter's printed entry
        assert abs(float(r.slope) - float(trace[r.grad][r.idx])) < 1e-5 * abs(float(r.exact))
    # exact arithmetic prints the exact gradient: it meets the difference to 4 digits too
    exact = Book(trace, arithmetic="exact")
    for r in dv.finite_differences(Config(), trace, exact):
        assert sig(r.slope, 4) == r.printed.value, r


def test_centred_differences_in_a_deeper_gpt2_model() -> None:
    c = from_mapping({"model": "gpt2", "layers": 2})
    t = engine.run(c)
    rows = dv.finite_differences(c, t, Book(t))
    assert [r.param for r in rows] == ["W_lm", "l0.W1", "E_token"]
    assert all(r.agree >= 4 for r in rows)


# --- numbering --------------------------------------------------------------------------------
def test_derivation_exercises_leave_every_number_in_place(trace) -> None:
    every = tuple(ch.number for ch in trace.chapters)
    derived = derivation_numbers(trace, every)
    assert derived == {
        "8.3": (8, "recipe"),
        "8.4": (8, "softmax"),
        "8.5": (8, "cross_entropy"),
        "9.3": (9, "products"),
        "10.18": (10, "layernorm"),
        "10.19": (10, "gelu"),
        "10.20": (10, "residual"),
        "11.29": (11, "attention"),
        "12.10": (12, "embedding"),
        "13.17": (13, "adamw"),
    }
    computing = set(exercise_numbers(trace, every).values())
    assert not computing & set(derived)
    for number in derived:  # each follows its chapter's last computing exercise
        ch, k = map(int, number.split("."))
        assert f"{ch}.{k - 1}" in computing | set(derived)
    assert book_numbers(trace)[-2:] == ["13.16", "13.17"]


def test_sections_select_derivations_and_the_key_completes_them(trace) -> None:
    opts = Options(sections=("8.2", "8.4", "13.17"))
    ex = Exercises(Config(), trace, opts)
    tex = ex.tex()
    assert re.findall(r"\\(?:deriv)?exercise\{([\d.]+)\}", tex) == ["8.2", "8.4", "13.17"]
    assert set(ex.blanks) == {"8.2"}  # a derivation has no grid cells for the grader
    key = Answers(Config(), trace, opts).tex()
    for n, topic in (("8.4", "softmax"), ("13.17", "adamw")):
        d = ex.derived.get(topic)
        start = tex.index(rf"\derivexercise{{{n}}}")
        block = tex[start : tex.index(r"\workspace", start)]
        assert block.count(r"\dblank") == len(d.keys) > 0
        answer = key[key.index(rf"\answer{{{n}}}") :]
        for k, line in enumerate(d.lines, 1):  # every line, the key lines marked
            number = rf"\textbf{{{k}}}" if line.key else str(k)
            assert rf"\dline{{{number}}}{{${line.math}$}}" in answer


def test_every_derivation_builds_for_both_families_and_depths() -> None:
    for model, layers in (("seed", 1), ("seed", 3), ("gpt2", 1), ("gpt2", 3)):
        c = from_mapping({"model": model, "layers": layers})
        t = engine.run(c)
        derived = dv.Derivations(c, t, Book(t), Fmt(4))
        for info in t.chapters:
            found = list(derived.chapter(info))
            if info.part != "forward":
                assert found, (model, layers, info.title)
            for d, full in found:
                assert d.lines and (full or d.result), (model, layers, d.topic)
                if d.instance is not None:
                    assert t.step(d.instance.step).chapter == info.number


# --- the printed pages --------------------------------------------------------------------------
DECIMAL = re.compile(r"\d+\.\d+")


def decimals(text: str) -> list[str]:
    return DECIMAL.findall(text)


@pytest.mark.tex
def test_each_instance_is_the_entry_its_chapter_prints(pdf_texts: dict[str, str], trace, book):
    """In the compiled workbook each instance's numbers stand in its derivation and again
    where the chapter works the same entry, ending on the value the chapter prints."""
    text = pdf_texts["workbook"]
    derived = dv.Derivations(Config(), trace, book, Fmt(4))
    for info in trace.chapters:
        for d, _ in derived.chapter(info):
            if d.instance is None:
                continue
            value = dv.instance_value(d, book)
            last = d.instance.lines[-1]
            assert last.endswith(f"= {Fmt(4)(value)}"), d.topic
            # the last substitution and the value: one line of the page, whatever the layout
            numbers = decimals(" ".join(split_top(last)[-2:]))
            stream = " ".join(decimals(text))
            run = " ".join(numbers)
            at = stream.find(run)
            assert at >= 0, f"{d.topic}: {run[:80]}"
            assert stream.find(run, at + 1) > at, f"{d.topic}: printed only once"


@pytest.mark.tex
def test_the_finite_differences_are_printed(pdf_texts: dict[str, str], trace, book) -> None:
    text = pdf_texts["workbook"].replace("\u2212", "-")
    section = text[text.rindex("What a gradient means, with numbers") :][:3000]  # not the contents
    for r in dv.finite_differences(Config(), trace, book):
        for x in (r.plus, r.minus, r.slope, r.exact):
            assert str(x) in section, x


@pytest.mark.tex
def test_the_default_workbook_grows_by_at_most_30_pages(default_build: Path) -> None:
    from pypdf import PdfReader

    assert len(PdfReader(default_build / "workbook.pdf").pages) <= 461 + 30


# --- other families and depths, compiled once each ------------------------------------------
BUILDS = [("seed", 2), ("seed", 3), ("gpt2", 1), ("gpt2", 2), ("gpt2", 3)]


@pytest.fixture(scope="session", params=BUILDS, ids=[f"{m}-{n}" for m, n in BUILDS])
def derivation_build(request, tmp_path_factory) -> tuple[str, int, Path]:
    """A model's workbook (results only: the derivations do not depend on the detail) and
    its derivation exercises with their key, compiled once per session."""
    model, layers = request.param
    c = from_mapping({"model": model, "layers": layers})
    t = engine.run(c)
    sections = ",".join(derivation_numbers(t, tuple(ch.number for ch in t.chapters)))
    out = tmp_path_factory.mktemp(f"derivations-{model}-{layers}")
    argv = ["build", "-o", str(out), "-q", "--model", model, "--layers", str(layers)]
    assert cli.main([*argv, "--detail", "results", "--sections", sections]) == 0
    return model, layers, out


def derivation_pages(pdf: Path) -> list[int]:
    pages = read_pdf_text(pdf).split("\f")
    starts = [k + 1 for k, p in enumerate(pages) if "Where the formulas come from" in p]
    return sorted({p + k for p in starts for k in range(3) if p + k <= len(pages)})


@pytest.mark.tex
@pytest.mark.parametrize("document", ["workbook", "exercises", "answers"])
def test_derivations_compile_cleanly_without_collisions(derivation_build, document: str) -> None:
    model, layers, out = derivation_build
    log = (out / f"{document}.log").read_text()
    bad = [line for line in log.splitlines() if line.startswith(("Overfull", "Underfull"))]
    assert bad == [], f"{model} {layers}: {bad[:3]}"
    pdf = out / f"{document}.pdf"
    pages = derivation_pages(pdf) if document == "workbook" else None
    if document == "workbook":
        assert pages, "no derivation pages"
    found = collisions(pdf, pages)
    assert found == [], f"{model} {layers} {document}: {found[:5]}"
    if document == "exercises":
        assert "Fill in each line left blank" in read_pdf_text(pdf)


def test_decimal_helpers_read_printed_numbers() -> None:
    assert decimals("= (0.1473)(-0.07453) = -0.01788") == ["0.1473", "0.07453", "0.01788"]
    assert dv.agreeing_digits(Decimal("0.4802540"), Decimal("0.4802541")) == 6


def test_a_fast_formula_far_from_the_jacobian_route_says_why() -> None:
    """gpt2's LayerNorm fast formula lands tens of units from the Jacobian route: the book
    names the entry and that it is a small difference of numbers many times larger."""
    import re

    from workbook import engine
    from workbook.config import from_mapping
    from workbook.render import Options, Worked

    c = from_mapping({"model": "gpt2"})
    tex = Worked(c, engine.run(c), Options()).tex()
    said = r"difference of numbers about ([\d,]+) times larger, which nearly cancel"
    found = re.findall(said, tex)
    assert found and all(int(x.replace(",", "")) >= 10 for x in found)
