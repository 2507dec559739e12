"""Every printed line re-checks on a calculator: the proofreader redoes each one from the
numbers printed on it (tests/proofread.py knows nothing of the engine or the renderer)."""

from __future__ import annotations

import re
from decimal import Decimal

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
