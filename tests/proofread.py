"""A proofreader: re-derive every worked line of a LaTeX source from the numbers printed on it.

It knows nothing of the engine or the renderer. It reads each `\\ex{…}` or `\\example{…}` line,
splits it at its equals signs, turns the last expression into arithmetic (exact decimal; exp,
ln, tanh and √ to 50 digits) and rounds it half up to the book's significant digits: the
result must be the printed value, digit for digit.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

PREC = 150  # enough that 1 + tanh(−57) keeps its digits
LINE = re.compile(r"^\\(?:ex|example)\{(.*)\}$", re.M)
SKIP = (r"\text{(masked", r"\text{not needed", r"\text{(the last", r"\text{(not the", r"\max_j")


@dataclass(frozen=True)
class Check:
    line: str
    expression: str
    printed: Decimal
    redone: Decimal

    @property
    def ok(self) -> bool:
        return self.printed == self.redone


def statements(tex: str) -> Iterator[str]:
    """Each worked statement: a line, or the parts of a line joined by ',\\quad'."""
    for m in LINE.finditer(tex):
        body = m.group(1)
        if any(s in body for s in SKIP):
            continue
        yield from (part for part in body.split(r",\quad ") if " = " in part)


def split_top(text: str) -> list[str]:
    """Split at ' = ' outside braces."""
    out, depth, start, i = [], 0, 0, 0
    while i < len(text):
        ch = text[i]
        depth += ch == "{"
        depth -= ch == "}"
        if depth == 0 and text.startswith(" = ", i):
            out.append(text[start:i])
            start = i + 3
            i += 3
            continue
        i += 1
    out.append(text[start:])
    return out


_REWRITES = (
    (r"\textstyle", ""),
    (r"\bigl[", "("),
    (r"\bigr]", ")"),
    (r"\bigl(", "("),
    (r"\bigr)", ")"),
    (r"\cdot", "*"),
    (r"\times", "*"),
    (r"\,", " "),
    (r"\sqrt", "sqrt"),
    (r"\tanh", "tanh"),
    (r"\exp", "exp"),
    (r"\ln", "ln"),
    ("{-}", "-"),
    ("[", "("),
    ("]", ")"),
)
TOKEN = re.compile(r"\d+(?:\.\d+)?|sqrt|tanh|exp|ln|\*\*|[-+*/^(){}]|\s+")


def to_python(expr: str) -> str:
    """LaTeX arithmetic → a Python expression over D (Decimal) and the four functions."""
    for a, b in _REWRITES:
        expr = expr.replace(a, b)
    tokens = [t for t in TOKEN.findall(expr) if not t.isspace()]
    if "".join(tokens) != re.sub(r"\s+", "", expr):
        raise ValueError(f"cannot read {expr!r}")
    out: list[str] = []
    for k, tok in enumerate(tokens):
        prev = tokens[k - 1] if k else ""
        value_like = tok[0].isdigit() or tok in ("(", "{") or tok.isalpha()
        if out and value_like and (prev[0].isdigit() or prev in (")", "}")):
            out.append("*")  # implicit multiplication: 0.5(x), (a)(b), 2 10^{-5}
        if tok == "^":
            out.append("**")
        elif tok in ("{", "}"):
            out.append("(" if tok == "{" else ")")
        elif tok[0].isdigit():
            out.append(f"D('{tok}')")
        else:
            out.append(tok)
    return "".join(out)


def _tanh(u: Decimal) -> Decimal:
    if abs(u) > 200:  # ±1 to 170 digits, beyond PREC
        return Decimal(1).copy_sign(u)
    e = (2 * u).exp()
    return (e - 1) / (e + 1)


def evaluate(expr: str) -> Decimal:
    code = to_python(expr)  # then a function applied to a bare number: \\ln 0.1492
    code = re.sub(r"(ln|tanh|exp)(D\('[\d.]+'\))", r"\1(\2)", code)
    env = {
        "D": Decimal,
        "sqrt": lambda x: x.sqrt(),
        "exp": lambda x: x.exp(),
        "ln": lambda x: x.ln(),
        "tanh": _tanh,
    }
    with localcontext() as ctx:
        ctx.prec = PREC
        return Decimal(eval(code, {"__builtins__": {}}, env))


UNDERFLOW = Decimal("1e-99")


def sig(x: Decimal, digits: int) -> Decimal:
    """Half up to `digits` significant digits: the book's rule, restated independently."""
    if x == 0:
        return x
    with localcontext() as ctx:
        ctx.prec = PREC
        q = Decimal(1).scaleb(x.adjusted() - digits + 1)
        r = x.quantize(q, rounding=ROUND_HALF_UP)
        if r.adjusted() > x.adjusted():
            r = r.quantize(q.scaleb(1), rounding=ROUND_HALF_UP)
    return r


def significant_digits(number: str) -> int:
    """Significant digits of a printed number such as -0.001230 or 12.40."""
    digits = re.sub(r"[^\d]", "", number.split(r"\cdot")[0]).lstrip("0")
    return len(digits)


def proofread(tex: str, digits: int) -> list[Check]:
    """Every statement of the source, re-derived from its last expression."""
    checks = []
    for st in statements(tex):
        parts = split_top(st)
        if len(parts) < 3:
            continue  # a copy: lhs = name = value, nothing to compute
        expression, value = parts[-2], parts[-1]
        if "_" in expression:
            continue  # lhs = (source)_{i,j} = value: a copy, nothing computed
        if not re.fullmatch(r"-?[\d.]+(\\cdot 10\^\{-?\d+\})?", value.strip()):
            raise ValueError(f"no printed value at the end of {st!r}")
        printed = evaluate(value)
        if printed != 0 and significant_digits(value) != digits:
            raise ValueError(f"{value!r} does not have {digits} significant digits in {st!r}")
        try:
            exact = evaluate(expression)
            # the book's third rule: a result below 10^-99 in size is written as 0
            redone = Decimal(0) if abs(exact) < UNDERFLOW else sig(exact, digits)
        except (ValueError, SyntaxError, TypeError) as exc:
            raise ValueError(f"cannot redo {st!r}: {exc}") from None
        checks.append(Check(st, expression, printed, redone))
    return checks
