"""Every printed line re-checks on a calculator: the proofreader redoes each one from the
numbers printed on it (tests/proofread.py knows nothing of the engine or the renderer)."""

from __future__ import annotations

import re
from decimal import Decimal

import numpy as np
import pytest
from proofread import evaluate, proofread, sig, statements

from workbook.config import Config
from workbook.render import Exercises, Options, Worked


def test_the_proofreader_reads_and_catches() -> None:
    good = r"\ex{Q_{1,1} = 10^{-4}\bigl[(0.1473)(-1.2) + (2)(0.5)\bigr] = 8.232\cdot 10^{-5}}"
    bad = r"\ex{X_{1,6} = (-0.1454) + 0.01151 = -0.1338}"
    checks = proofread(good + "\n" + bad, 4)
    assert [c.ok for c in checks] == [True, False]
    assert checks[1].redone == Decimal("-0.1339")
    assert sig(evaluate(r"-\ln 0.1491"), 20) == sig(-Decimal("0.1491").ln(), 20)
    assert evaluate(r"(0.1 - (0.2))^2 / 4") == Decimal("0.0025")
    assert sig(Decimal("-0.12345"), 4) == Decimal("-0.1235")  # half up, away from zero


def test_every_worked_line_rechecks_exactly_under_hand_arithmetic(trace) -> None:
    tex = Worked(Config(), trace, Options()).tex()
    checks = proofread(tex, 4)
    wrong = [c for c in checks if not c.ok]
    assert len(checks) > 7000
    assert not wrong, "\n".join(f"{c.line[:160]} → {c.redone}" for c in wrong[:10])


@pytest.mark.parametrize("digits", [3, 6])
def test_other_digit_counts_recheck_too(trace, digits: int) -> None:
    tex = Worked(Config(), trace, Options(digits=digits, detail="sample")).tex()
    checks = proofread(tex, digits)
    assert len(checks) > 1000 and all(c.ok for c in checks)


def test_exercise_examples_recheck(trace) -> None:
    tex = Exercises(Config(), trace, Options()).tex()
    checks = proofread(tex, 4)
    assert len(checks) > 50 and all(c.ok for c in checks)


def test_exact_arithmetic_is_what_the_proofreader_rejects(trace) -> None:
    """The old behaviour, kept behind --arithmetic exact: lines round the exact value, so
    redoing them from the printed operands often misses the last digit."""
    tex = Worked(Config(), trace, Options(arithmetic="exact", detail="sample")).tex()
    wrong = [c for c in proofread(tex, 4) if not c.ok]
    assert any(c.line.startswith("X_{1,6} = (-0.1454) + 0.01151 = -0.1338") for c in wrong)


def test_gelu_writes_u_rounded_from_its_printed_input(trace) -> None:
    tex = Worked(Config(), trace, Options(detail="sample")).tex()
    pattern = re.compile(
        r"\\tanh\\bigl\(([\d.]+)\\,\(([-\d.]+) \+ ([\d.]+)\\,\(([-\d.]+)\)\^3\)\\bigr\)\\bigr\) = "
        r"0\.5\\,\([-\d.]+\)\\,\(1 \+ \\tanh \(([-\d.]+(?:\\cdot 10\^\{-?\d+\})?)\)\) = "
        r"0\.5\\,\([-\d.]+\)\\,\(1 \+ \(([-\d.]+(?:\\cdot 10\^\{-?\d+\})?)\)\)"
    )
    found = 0
    for st in statements(tex):
        m = pattern.search(st)
        if m:
            c, x, k, x3, u, t = m.groups()
            assert x == x3
            redone = sig(Decimal(c) * (Decimal(x) + Decimal(k) * Decimal(x) ** 3), 4)
            assert redone == evaluate(u), st
            assert sig(evaluate(rf"\tanh ({u})"), 4) == evaluate(t), st
            found += 1
    assert found >= 64


def parse_tables(tex: str) -> dict[str, dict[tuple[str, str], str]]:
    """Every printed matrix of a source, by its symbol: (row label, column label) → cell.
    A symbol printed for two different matrices (J_1 of each Jacobian) is left out."""
    tables: dict[str, dict[tuple[str, str], str]] = {}
    ambiguous: set[str] = set()
    for block in re.findall(r"\\begin\{mtab\}.*?\n(.*?)\\end\{mtab\}", tex, re.S):
        lines = block.strip().split("\n")
        symbol = re.search(r"\\multicolumn\{\d+\}\{@\{\}l\}\{(\$[^$]*\$)", lines[0]).group(1)
        header = next(line for line in lines if r"\colhead" in line)
        cols = re.findall(r"\\colhead\{([^}]*)\}", header)
        cells = tables.setdefault(symbol, {})
        for line in lines:
            m = re.match(r"\\rowhead\{([^}]*)\} & (.*?) \\\\", line)
            if m:
                row = [c.strip().strip("$") for c in m.group(2).split(" & ")]
                for col, cell in zip(cols, row, strict=True):
                    if cells.setdefault((m.group(1), col), cell) != cell:
                        ambiguous.add(symbol)
    return {s: t for s, t in tables.items() if s not in ambiguous}


def _cell(table: dict[tuple[str, str], str], r: int, c: int, transposed: bool) -> str:
    return table[(str(c + 1), str(r + 1)) if transposed else (str(r + 1), str(c + 1))]


def test_every_operand_is_the_number_its_table_prints(trace) -> None:
    """Each pair (a)(b) of every matrix product is read back from the printed tables of its
    two factors, independently of how the line was made."""
    from workbook.render.fmt import element
    from workbook.trace import Contraction

    tex = Worked(Config(), trace, Options()).tex()
    tables = parse_tables(tex)
    assert {"$A^{(1)}$", "$X$", "$W_Q^{(1)}$"} <= set(tables)  # figures do not hide a table
    checked = 0
    for step in trace.steps:
        if not (isinstance(step, Contraction) and step.kind == "matmul"):
            continue
        a, b = (tables.get(f"${trace.symbol(n)}$") for n in step.operands[:2])
        if not a or not b or not all(k.isdigit() for key in (*a, *b) for k in key):
            continue  # rows named by vocabulary words (E_token, W_lm): not read here
        inner = trace[step.operands[0]].shape[0 if step.transpose[0] else 1]
        for i, j in np.ndindex(step.shape):
            start = tex.find(rf"\ex{{{element(step.desc.symbol, (i, j))} = ")
            if start < 0:
                continue  # a zero row stated once
            line = tex[start : tex.index("\n", start)]
            pairs = re.findall(r"\(([^()]*)\)\(([^()]*)\)", line.split(" = ", 1)[1])
            want_a = [_cell(a, i, k, step.transpose[0]) for k in range(inner)]
            want_b = [_cell(b, k, j, step.transpose[1]) for k in range(inner)]
            assert [p[0] for p in pairs] == want_a, line
            assert [p[1] for p in pairs] == want_b, line
            checked += 1
    assert checked > 2000
