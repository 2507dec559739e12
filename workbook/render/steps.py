"""Each kind of trace step as LaTeX: its equation, its per-element formula, and one element
worked with numbers — the symbol → substitution → value rhythm of the workbook.

Nothing here computes: every number is read from the printed chain (`printed.Book`) and
only formatted, so each line shows exactly the numbers its value was computed from.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from .. import hand
from ..printed import Book, Num, single
from ..trace import Cell, Contraction, Elementwise, Gather, Index, RowWise, Step, Trace, cell_names
from .fmt import Fmt, element, shape

Values = Mapping[str, np.ndarray]


def transposed(sym: str, flip: bool = True) -> str:
    """sym^⊤, grouped first when sym has a superscript of its own."""
    if not flip:
        return sym
    return f"{{{sym}}}^{{\\top}}" if "^" in sym else f"{sym}^{{\\top}}"


# --- the whole-tensor equation ------------------------------------------------------------
def equation(step: Step, t: Trace) -> str:
    """E.g. Q^{(1)} = X W_Q^{(1)}: the line a chapter or section heading shows."""
    sym = [t.symbol(n) for n in step.operands]
    lhs = step.desc.symbol
    i, j = element(lhs, ("i",)), element(lhs, ("j",))
    x_ij = element(sym[0], ("i", "j"))
    if isinstance(step, Contraction):
        if step.kind == "matmul":
            rhs = (
                rf"{transposed(sym[0], step.transpose[0])}\,{transposed(sym[1], step.transpose[1])}"
            )
            return f"{lhs} = {rhs}" + (f" + {t.symbol(step.bias)}" if step.bias else "")
        if step.kind == "jacobian":
            row = element(sym[0], ("i", ":"))
            return rf"{element(lhs, ('i', ':'))} = {row}\, J_i"
        if step.kind == "colsum":
            return rf"{j} = \sum_i {x_ij}"
        return rf"{j} = \sum_i {x_ij}\,{element(sym[1], ('i', 'j'))}"
    if isinstance(step, Elementwise):
        return general(step, t)
    if isinstance(step, RowWise):
        src = sym[0]
        return {
            "softmax": rf"{lhs} = \operatorname{{softmax}}_{{\text{{rows}}}}({src})",
            "mean": rf"{i} = \tfrac{{1}}{{n}}\sum_j {x_ij}",
            "sum": rf"{i} = \sum_j {x_ij}",
            "var": rf"{i} = \tfrac{{1}}{{n}}\sum_j ({x_ij} - {element(sym[-1], ('i',))})^2",
            "mean_loss": rf"{lhs} = \tfrac{{1}}{{T-1}}\sum_{{i=1}}^{{T-1}} {src}_i",
        }[step.kind]
    if isinstance(step, Gather):
        return _gather_equation(step, t)
    raise TypeError(step)


def _gather_equation(step: Gather, t: Trace) -> str:
    lhs, src = step.desc.symbol, [t.symbol(n) for n in step.operands]
    x_ij = element(src[0], ("i", "j"))
    if step.kind == "lookup":
        by_token = t.desc(step.operands[0]).rows == "vocab"
        row = "t_i+1" if by_token else "i"  # ids from 0, rows from 1
        return rf"{element(lhs, ('i', 'j'))} = ({src[0]})_{{{row},j}}"
    if step.kind == "pick":
        return rf"{element(lhs, ('i',))} = p_{{i,\,t_{{i+1}}+1}}"
    if step.kind == "concat":
        heads = r" \mid ".join(src)
        return rf"{lhs} = [\,{heads}\,]"
    if step.kind == "slice":
        first, last = step.offset + 1, step.offset + step.shape[1]
        return rf"{lhs} = {src[0]}_{{:,\,{first}:{last}}}"
    if step.kind == "scatter":
        return rf"{element(lhs, ('v', 'j'))} = \sum_{{i:\,t_i + 1 = v}} {x_ij}"
    return rf"{element(lhs, ('i', 'j'))} = {x_ij} \text{{ for }} i \le T,\ 0 \text{{ otherwise}}"


def dims(step: Step, values: Values) -> str:
    """[5×16]·[16×8] → [5×8] for a product; operand shapes → result shape otherwise."""
    if isinstance(step, Contraction) and step.kind == "matmul":
        a, b = (values[n].shape for n in step.operands[:2])
        a = a[::-1] if step.transpose[0] else a
        b = b[::-1] if step.transpose[1] else b
        return rf"{shape(a)}\cdot{shape(b)} \to {shape(step.shape)}"
    ins = ", ".join(shape(values[n].shape) for n in dict.fromkeys(step.operands))
    return rf"{ins} \to {shape(step.shape)}"


# --- element-wise formulas: general form -----------------------------------------------------
_GENERAL_INDEX = {"ij": ("i", "j"), "i": ("i",), "j": ("j",), "": ()}


def general(step: Elementwise, t: Trace) -> str:
    """The formula of one element in symbols, e.g. X_{i,j} = (E_token)_{t_i,j} + ...."""
    idx = ("i", "j")[: len(step.shape)] if step.shape else ()
    lhs = element(step.desc.symbol, idx)
    args = []
    for name, how in zip(step.operands, step.align, strict=True):
        sub = _GENERAL_INDEX[how][: len(step.shape)] if how == "ij" else _GENERAL_INDEX[how]
        args.append(element(t.symbol(name), sub))
    return step.formula.general(lhs, *args)


def is_masked(step: Step, idx: Index) -> bool:
    masked = getattr(step, "consts", {}).get("masked")
    return masked is not None and bool(masked[idx])


def is_matmul(step: Step) -> bool:
    """A product of two matrices (not a Jacobian's, a column sum or a vector)."""
    return isinstance(step, Contraction) and step.kind == "matmul" and len(step.shape) == 2


def masked_product(step: Step, idx: Index) -> str:
    """ "unneeded" (QKᵀ) or "zero" (its gradient) for an entry above the diagonal of a
    product the causal mask touches, so it is never expanded or asked for; else ""."""
    above = len(idx) == 2 and idx[1] > idx[0]
    return step.desc.causal if above else ""


# --- a Jacobian's entries, worked ------------------------------------------------------------
def jacobian_row(step: Contraction, book: Book) -> int:
    """The row whose Jacobian a section works two entries of: the first (LayerNorm) or the
    last, where the fewest entries are masked (softmax), among the rows whose gradient is not
    zero: a Jacobian that multiplies zeros is not used."""
    softmax = step.jacobian_of == "softmax"
    rows = range(step.shape[0] - 1, -1, -1) if softmax else range(step.shape[0])
    grad = book.values[step.operands[0]]
    return next((r for r in rows if np.any(grad[r] != 0)), rows[0])


def jacobian_entries(step: Contraction, book: Book, f: Fmt) -> list[str]:
    """A diagonal entry of one Jacobian (of row `jacobian_row`) and the entry beside it, from
    the written inputs."""
    softmax = step.jacobian_of == "softmax"
    i = jacobian_row(step, book)
    J = book.jacobian(step.name, i)
    n = J.shape[0]
    lines = []
    for j, k in ((0, 0), (0, 1))[: min(n, 2)]:
        delta = "1" if j == k else "0"
        if softmax:
            a = book.nums(step.operands[1])[i]
            sub = rf"{f.paren(a[j])}\,({delta} - {f.paren(a[k])})"
        else:
            x_hat = book.nums(step.operands[1])[i]
            var = book.values[step.operands[2]][i]
            s = single(hand.sigma(var, step.jacobian_consts["eps"], book.r), book.digits)
            sub = (
                rf"({delta} - 1/{n} - {f.paren(x_hat[j])}\,{f.paren(x_hat[k])}/{n}) / {f.paren(s)}"
            )
        lines.append(rf"(J_{{{i + 1}}})_{{{j + 1},{k + 1}}} = {sub} = {f(J[j, k])}")
    return lines


# --- rows that are zero by construction ---------------------------------------------------
# Element-wise formulas that are 0 wherever their first input is (a gradient times something),
# and those that are 0 wherever all their inputs are.
ZERO_WITH_FIRST = {"mul", "copy", "scale", "gelu_backward", "ln_backward_fast"}
ZERO_WITH_ALL = {"add", "sum", "embed"}


def _row_is_zero(book: Book, name: str, i: int, transposed: bool = False) -> bool:
    a = book.values[name]
    row = (a.T if transposed else a)[i] if a.ndim else a
    return all(x == 0 for x in np.ravel(row))


def zero_row(step: Step, book: Book, i: int) -> str | None:
    """Why row i of a step's result is zero whatever the numbers, or None: a whole row is
    then stated once with its reason instead of as products of zeros."""
    if not step.shape or len(step.shape) > 2 or not _row_is_zero(book, step.name, i):
        return None
    src = step.operands[0]
    if isinstance(step, Contraction) and step.kind in ("matmul", "jacobian"):
        transposed = step.kind == "matmul" and step.transpose[0]
        if _row_is_zero(book, src, i, transposed):
            which = "column" if transposed else "row"
            return rf"{which} {i + 1} of ${book.t.symbol(src)}$ is zero"
    reduction = isinstance(step, RowWise) and step.kind in ("mean", "sum")
    if reduction and len(step.shape) == 1 and _row_is_zero(book, src, i):
        return rf"row {i + 1} of ${book.t.symbol(src)}$ is zero"
    if isinstance(step, Elementwise) and len(step.shape) == 2:
        consts = step.constants((i, 0))
        if "weight" in consts and all(
            step.constants((i, j))["weight"] == 0 for j in range(step.shape[1])
        ):
            return "the last position predicts nothing"
        rows = [n for n, how in zip(step.operands, step.align, strict=True) if how == "ij"]
        if (
            step.formula.name in ZERO_WITH_FIRST
            and rows[:1] == [src]
            and _row_is_zero(book, src, i)
        ):
            return rf"row {i + 1} of ${book.t.symbol(src)}$ is zero"
        if step.formula.name in ZERO_WITH_ALL and all(_row_is_zero(book, n, i) for n in rows):
            return "the rows it adds are zero"
    return None


def zero_row_line(step: Step, i: int, reason: str) -> str:
    """(dM)_{5,j} = 0 for every j: row 5 of dA is zero."""
    if len(step.shape) == 1:
        return rf"{element(step.desc.symbol, (i,))} = 0\quad\text{{({reason})}}"
    lhs = element(step.desc.symbol, (i, "j"))
    return rf"{lhs} = 0 \text{{ for every }} j\quad\text{{({reason})}}"


def gelu_tanh_note(f: Fmt, parts: Mapping[str, Num]) -> str:
    """The tanh a GELU′ line uses, from the u its GELU line wrote."""
    return rf"\tanh u = \tanh {f.paren(parts['u'])} = {f(parts['tanh'])}"


# --- one element worked out ---------------------------------------------------------------
def work(step: Step, book: Book, idx: Index, f: Fmt) -> str:
    """lhs = substitution = value for one element (math-mode LaTeX), in printed numbers."""
    lhs = element(step.desc.symbol, idx)
    value = f(book.num(step.name, idx))
    if isinstance(step, Contraction):
        return rf"{lhs} = {expansion(step, book, idx, f)} = {value}"
    if isinstance(step, Elementwise):
        if is_masked(step, idx):
            later = f"position {idx[1] + 1} comes after {idx[0] + 1}"
            return rf"{lhs} = {value} \quad\text{{(masked: {later})}}"
        consts = step.constants(idx)
        if "weight" in consts and consts["weight"] == 0:
            return rf"{lhs} = 0 \quad\text{{(the last position predicts nothing)}}"
        if step.formula.name == "probs_backward" and consts["target"] == 0:
            return rf"{lhs} = 0 \quad\text{{(not the next token)}}"
        parts = {k: book.part(step.name, idx, k) for k in book.parts[step.name].get(idx, {})}
        sub = step.formula.substitute(book.inputs(step, idx), consts, f, parts)
        line = rf"{lhs} = {sub} = {value}"
        if step.formula.name == "gelu_backward":  # first the tanh u the line is about to use
            return rf"{gelu_tanh_note(f, parts)},\quad {line}"
        return line
    if isinstance(step, Gather):
        src = step.sources(book.values, idx)
        if not src:
            return rf"{lhs} = 0"
        names = " + ".join(element(book.t.symbol(n), k) for n, k in src)
        if len(src) == 1:
            return rf"{lhs} = {names} = {value}"
        return rf"{lhs} = {names} = {f.plus([book.num(n, k) for n, k in src])} = {value}"
    if isinstance(step, RowWise):
        return _work_reduction(step, book, idx, f)
    raise TypeError(step)


def factor_cells(step: Contraction, book: Book, idx: Index) -> tuple[list, list, list[Cell]]:
    """Which operand element each factor of result[idx] is, in the order the sum writes them:
    the left factors, the right ones, then the bias. A Jacobian's entries (and a column
    sum's implicit ones) are numbers, not an operand's cells."""
    where = cell_names({n: np.shape(book.values[n]) for n in step.operands})
    a, b = step.factors(where, idx)
    bias = [(step.bias, tuple(idx[-1:]))] if step.bias is not None else []
    return list(a.ravel()), list(np.ravel(b)), bias


def expansion(
    step: Contraction,
    book: Book,
    idx: Index,
    f: Fmt,
    named: Callable[[Cell], str | None] | None = None,
) -> str:
    """The sum of products, in index order, with the operands as their tables print them.
    `named` may name a factor instead of printing it (a learner's own earlier answer); a sum
    with a named factor prints every other one in full, with no shared power of ten."""
    if step.kind == "colsum":
        a, b = list(book.nums(step.operands[0])[:, idx[0]]), None
    elif step.kind == "jacobian":
        i, j = idx
        a, b = list(book.nums(step.operands[0])[i]), list(book.jacobian(step.name, i)[:, j])
    else:
        a, b = (list(x) for x in step.factors({n: book.nums(n) for n in step.operands}, idx))
    bias = [book.num(step.bias, idx[-1:])] if step.bias is not None else []
    na = nb = nbias = []
    if named is not None:
        cells_a, cells_b, cells_bias = factor_cells(step, book, idx)

        def names(cells: list) -> list[str | None]:
            return [named(c) if isinstance(c, tuple) else None for c in cells]

        na, nb, nbias = names(cells_a), names(cells_b), names(cells_bias)
    if not any(na + nb + nbias):
        body = f.plus(a) if b is None else f.products(list(zip(a, b, strict=True)))
        return body + "".join(f" + {f.paren(x)}" for x in bias)

    def term(x: Num, name: str | None) -> str:
        return name or f.paren(x)

    if b is None:
        body = " + ".join(term(x, n) for x, n in zip(a, na, strict=True))
    else:
        body = " + ".join(term(x, n) + term(y, m) for x, n, y, m in zip(a, na, b, nb, strict=True))
    return body + "".join(f" + {term(x, n)}" for x, n in zip(bias, nbias, strict=True))


def _work_reduction(step: RowWise, book: Book, idx: Index, f: Fmt) -> str:
    lhs = element(step.desc.symbol, idx)
    row = list(step.row({step.operands[0]: book.nums(step.operands[0])}, idx))
    value = f(book.num(step.name, idx))
    if step.kind == "mean":
        return rf"{lhs} = \bigl({f.plus(row)}\bigr) / {len(row)} = {value}"
    if step.kind == "var":
        mu = f.paren(book.num(step.operands[1], idx[:1]))
        sq = " + ".join(rf"{{({f(x)} - {mu})^2}}" for x in row)  # unbreakable
        return rf"{lhs} = \bigl({sq}\bigr) / {len(row)} = {value}"
    if step.kind == "sum":
        return rf"{lhs} = {f.plus(row)} = {value}"
    if step.kind == "mean_loss":
        return rf"{lhs} = \bigl({f.plus(row[: step.count])}\bigr) / {step.count} = {value}"
    raise ValueError(step.kind)


def softmax_row(step: RowWise, book: Book, i: int, f: Fmt) -> list[str]:
    """One row of a softmax: the maximum, each exponential, their sum, each probability."""
    row = list(step.row({step.operands[0]: book.nums(step.operands[0])}, (i, 0)))
    parts = book.parts[step.name][(i,)]
    live = sorted(int(k[1:]) for k in parts if k.startswith("e"))
    e = {j: book.part(step.name, (i,), f"e{j}") for j in live}
    total = book.part(step.name, (i,), "sum")
    top_value = hand.sig(book.parts[step.name][(i,)]["max"], book.digits)
    top = next(
        x for x in row if x.value.is_finite() and x.value == top_value
    )  # as its table prints it
    src = step.operands[0]
    lines = [rf"s^{{\max}}_{{{i + 1}}} = \max_j {element(book.t.symbol(src), (i, 'j'))} = {f(top)}"]
    lines += [rf"e_{{{j + 1}}} = \exp({f(row[j])} - {f.paren(top)}) = {f(e[j])}" for j in live]
    lines.append(rf"\textstyle\sum_j e_j = {f.plus(list(e.values()))} = {f(total)}")
    for j in range(len(row)):
        lhs = element(step.desc.symbol, (i, j))
        if j in e:
            lines.append(rf"{lhs} = {f(e[j])} / {f(total)} = {f(book.num(step.name, (i, j)))}")
        else:
            lines.append(rf"{lhs} = 0 \quad\text{{(masked)}}")
    return lines
