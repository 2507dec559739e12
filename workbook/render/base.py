"""What the three documents share: options, prose templates, the document skeleton.

PyLaTeX builds the structure (document, parts, chapters, sections); Jinja2 templates in
`templates/` hold the prose. Each view (worked workbook, exercises, answer key) fills the
chapters of the same trace in its own way.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import cached_property
from pathlib import Path

import jinja2
import numpy as np
from pylatex import Command, Document, NoEscape, Package
from pylatex.section import Chapter, Part, Section

from .. import __version__, hand
from ..config import MAX_DIGITS, Config, ConfigError
from ..hand import CONST_DIGITS, UNDERFLOW, config_const, derived_const, sig
from ..printed import Book, Num, UnprintableError, factor_exp
from ..trace import Chapter as ChapterInfo
from ..trace import Contraction, Elementwise, RowWise, Step, Trace
from . import derivations, steps
from .fmt import Fmt, element, shape, shown_words, tex_escape
from .matrix import (
    FOOTNOTE_SCALE,
    TABCOLSEP,
    Layout,
    cell_width,
    column_blocks,
    digits_within,
    number_table,
    side_by_side,
)


def _templates() -> Path:
    """templates/ beside the package in a checkout (or editable install), else the copy a
    regular install puts under <prefix>/share/workbook/templates."""
    here = Path(__file__).resolve().parents[2] / "templates"
    return here if here.is_dir() else Path(sys.prefix) / "share" / "workbook" / "templates"


TEMPLATES = _templates()
DETAILS = ("full", "sample", "results")
PAPERS = ("a4", "letter")
PARTS = {"forward": "Forward pass", "backward": "Backward pass", "optimizer": "Optimization"}


# The AdamW table's columns: the role of each (the parameter itself, its gradient, then the
# AdamW results) and its heading.
ADAM_COLUMNS = (
    ("theta", r"\theta"),
    ("g", "g"),
    ("m", "m"),
    ("v", "v"),
    ("m_hat", r"\hat m"),
    ("v_hat", r"\hat v"),
    ("updated", r"\theta'"),
)


# The AdamW table's and grid's widest row label under the limits, (W_Q^{[8](128)})_{128,64},
# and widest heading, \hat v ×10^{-100}, in pt at \footnotesize (measured), with separation.
ADAM_LABEL, ADAM_HEAD = 72.0, 45.0


# The values a step writes on the way to its result, shown as tables in the answer key:
# (key in the step's parts, one per row?, symbol). GELU′'s u and tanh u are GELU's own.
WRITTEN = {
    "softmax": (("max", True, r"s^{\max}"), ("e", False, "e"), ("sum", True, r"\sum_j e_j")),
    "normalize": (("sigma", True, r"\tilde{\sigma}"),),
    "ln_backward_fast": (("sigma", True, r"\tilde{\sigma}"),),
    "gelu": (("u", False, "u"), ("tanh", False, r"\tanh u")),
    "gelu_backward": (("grad", False, r"\mathrm{GELU}'"),),
    "adam_update": (("sqrt_v", False, r"\sqrt{\hat v}"),),
}


GIVENS = ("chapter", "start")
BASE_FONT_SIZE = 10  # pt: the size every width of the layout is measured at
FONT_SIZES = range(10, 21)  # pt a user may ask for; large print is 16 pt, sans-serif
LARGE_PRINT = 16
SCAFFOLDS = ("worked-first", "faded", "none", "half")
LAYOUTS = ("falk", "grid")


@dataclass(frozen=True)
class Options:
    detail: str = "full"
    digits: int = 4  # significant digits of every printed number
    arithmetic: str = "hand"  # one of printed.ARITHMETICS
    paper: str = "a4"
    chapters: tuple[int, ...] | None = None  # the exercises' and answer key's; None: all
    sections: tuple[str, ...] | None = None  # exercise numbers ("3.2") among those; None: all
    figures: bool = True  # heat maps and other pictures beside the tables
    givens: str = "chapter"
    scaffold: str = "worked-first"
    layout: str = "falk"  # an exercise's product grid: a Falk scheme, or the plain grid
    font_size: int = 10  # pt of the body text as printed: above 10 the pages are magnified
    sans: bool = False  # sans-serif text and digits (large print)

    @property
    def scale(self) -> float:
        """How much the print is magnified: 1.6 for 16 pt."""
        return self.font_size / BASE_FONT_SIZE

    @property
    def layout_page(self) -> Layout:
        return Layout(self.paper, self.scale)


def key(name: str) -> str:
    """A LaTeX label key for a trace name."""
    return re.sub(r"[^A-Za-z0-9]", "-", name)


def _finalize(value: object) -> str:
    """Jinja's last word on every {{ }}: text is escaped unless marked NoEscape."""
    if isinstance(value, NoEscape):
        return value
    return tex_escape(str(value))


@functools.cache
def jinja_env() -> jinja2.Environment:
    """One environment for every document: a template is compiled once per run, not once
    per student's handout."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        block_start_string="<%",
        block_end_string="%>",
        variable_start_string="<<",
        variable_end_string=">>",
        comment_start_string="<#",
        comment_end_string="#>",
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env


@functools.cache
def from_string(text: str) -> jinja2.Template:
    """A template of a note or a rule, compiled once."""
    return jinja_env().from_string(text)


def minus_example(digits: int) -> str:
    """The rounding rule on a negative number: −0.12345 becomes −0.1235 (for 4 digits)."""
    x = Decimal("-0." + "123456789"[:digits] + "5")
    return rf"{x} \text{{ becomes }} {sig(x, digits)}".replace("-", "{-}")


def _m(tex: str) -> NoEscape:
    """Inline math for a template."""
    return NoEscape(f"${tex}$")


# The functions a learner applies, and the values written on the way, by the steps that need
# them: a handout names only those of its own exercises.
FUNCTIONS = (
    ("exp", {"softmax"}),
    ("ln", {"nll"}),
    ("tanh", {"gelu", "gelu_backward"}),
    ("the square root", {"normalize", "ln_backward_fast", "adam_update"}),
)
ON_THE_WAY = (
    (r"$u$ and $\tanh u$ inside GELU", {"gelu", "gelu_backward"}),
    ("the exponentials of a softmax and their sum", {"softmax"}),
    (r"a LayerNorm row's $\tilde{\sigma}$", {"normalize", "ln_backward_fast"}),
)


def tilde_sigma(var: str) -> str:
    """σ̃ = √(σ² + ε), marked as the variance `var` is: σ̃_ln1 beside σ²_ln1."""
    return var.replace(r"\sigma^2", r"\tilde{\sigma}")


def _listed(items: Iterable[str]) -> str:
    """a, b and c."""
    xs = list(items)
    return ", ".join(xs[:-1]) + " and " + xs[-1] if len(xs) > 1 else "".join(xs)


class Renderer:
    """One view of a trace as a LaTeX document; subclasses fill the chapters."""

    view = ""  # worked | exercises | answers: picks the title and front-matter templates
    pdf_title = "One Training Step of a Transformer"
    before_hyperref: tuple[str, ...] = ()  # packages that must load before hyperref
    contents = True  # a table of contents after the title
    selective = False  # shows only the selected chapters and exercises (exercises, key)
    parts = True  # Part I, II, III pages
    # entries a mask makes unneeded (QKᵀ above the diagonal): a dash, or (a key for grading)
    # their values in grey, since a transposed product puts them below the diagonal
    shows_unneeded = False

    def __init__(self, c: Config, t: Trace, opts: Options, book: Book | None = None) -> None:
        """`book`: the printed values, when the caller has made them (with the same digits
        and arithmetic), so that the documents of one build share them."""
        self.c, self.t, self.opts = c, t, opts
        self.f = Fmt(opts.digits)
        self.book = book if book is not None else Book(t, opts.digits, opts.arithmetic)
        self.layout = opts.layout_page
        self.env = jinja_env()
        texts = self.env.get_template("steps.tex.j2").module
        self.notes: dict[str, str] = texts.notes
        self.writes: dict[str, str] = texts.writes
        self.param_names = list(t.params)  # in the order of the data flow
        # the exercises a selective view asks: before the context, whose tables need them
        self.selection = Selection(t, opts)
        self.numbers, self.picked = self.selection.numbers, self.selection.picked
        self._context = self.make_context()

    # --- prose -------------------------------------------------------------------------
    def prose(self, template: str, **extra: object) -> NoEscape:
        return NoEscape(self.env.get_template(template).render(**self._context, **extra))

    def make_context(self) -> dict[str, object]:
        c, f = self.c, self.f
        counts = {n: int(self.t[n].size) for n in self.param_names}
        return {
            "c": c,
            "m": _m,
            "opts": self.opts,
            "view": self.view,
            "version": __version__,
            "title": self.pdf_title,
            "sentence": NoEscape(tex_escape(c.sentence, breakable=True)),
            "words": list(enumerate(c.vocab)),
            "tokens": [(pos + 1, tok, c.vocab[tok]) for pos, tok in enumerate(c.tokens)],
            "counts": [
                (_m(self.t.symbol(n)), _m(shape(self.t[n].shape)), f"{k:,}")
                for n, k in counts.items()
            ],
            "total": f"{sum(counts.values()):,}",
            "T": c.T,
            "n_proj": sum(1 for _ in self.t.chapter(self.first_chapter("qkv"))),
            "n_predict": self.t.loss.count,
            "sqrt_dk_inv": _m(f.const(derived_const(self.scale))),
            "dim": lambda *n: "[" + r"\times ".join(map(str, n)) + "]",
            "eps_ln": f.const(c.ln_eps),
            "lr": f.const(c.lr),
            "beta1": f.const(c.beta1),
            "beta2": f.const(c.beta2),
            "eps_adam": f.const(c.adam_eps),
            "wd": f.const(c.weight_decay),
            "init_scale": f.const(c.init_scale),
            "hand": self.book.hand,
            "const_digits": CONST_DIGITS,
            "underflow": f.const(UNDERFLOW),
            "scale": f.const(derived_const(self.scale)),
            "sqrt_2_pi": f.const(hand.SQRT_2_OVER_PI),
            "gelu_c": f.const(hand.GELU_C),
            "gelu_dc": f.const(hand.GELU_DC),
            "minus_example": minus_example(self.opts.digits),
            "constants": self.constants_used(),
            "cites_workbook": getattr(self, "cites_workbook", True),
            "el": lambda sym, *idx: NoEscape(element(sym, idx)),
            "tr": lambda sym: NoEscape(steps.transposed(sym)),
            "layers": c.layers,
            "family": c.model,
            "tilde": lambda var: NoEscape(tilde_sigma(var)),
            "zero_tokens": NoEscape(self.zero_tokens()),
        }

    def zero_tokens(self) -> str:
        """Which rows of the token embeddings' gradient are zero, and why: tokens not in the
        sentence, and those that stand only at the last position, whose row of dX is zero."""
        c = self.c
        last = c.T - 1
        absent = [w for v, w in enumerate(c.vocab) if v not in c.tokens]
        only_last = [c.vocab[v] for v in dict.fromkeys(c.tokens) if c.tokens.index(v) == last]

        def words(ws: list[str]) -> str:
            # running text: a long word may break (the token lists print it whole)
            return _listed(rf"\texttt{{{tex_escape(w, breakable=True)}}}" for w in ws)

        parts = []
        if absent:
            parts.append(f"Tokens not in the sentence ({words(absent)}) get zero.")
        if only_last:
            parts.append(
                f"So does {words(only_last)}, although it is in the sentence: it stands only at "
                "the last position, which predicts nothing and which, under the causal mask, no "
                rf"earlier position attends to, so row {c.T} of $\mathrm{{d}}X$ is zero (see the "
                "derivation that opens this chapter)."
            )
        return " ".join(parts)

    @cached_property
    def derived(self) -> derivations.Derivations:
        """The derivations of this trace's chapters, with its printed numbers."""
        return derivations.Derivations(self.c, self.t, self.book, self.f)

    def first_chapter(self, intro: str) -> int:
        return next(ch.number for ch in self.t.chapters if ch.intro == intro)

    def symbol(self, name: str) -> str:
        return self.t.symbol(name)

    def title(self, name: str) -> str:
        """A step's title as LaTeX, as the engine described it."""
        return self.t.desc(name).title

    @staticmethod
    def arithmetic_kind(step: Step) -> str:
        """The key of `writes` for a step: its formula, or its kind of reduction or product."""
        if isinstance(step, Contraction):
            return "colsum" if step.kind in ("colsum", "coldot") else "contraction"
        if isinstance(step, Elementwise):
            return step.formula.name
        return getattr(step, "kind", "")

    def write_down(self, step: Step | None, kind: str = "") -> str:
        """What to write (and round) on the way to this step's result: the rules, applied."""
        kind = kind or (self.arithmetic_kind(step) if step is not None else "")
        default = "each entry, rounded." if step is None or step.shape else "the result."
        text = self.writes.get(kind, default)
        return rf"\writes{{{from_string(text).render(**self._context)}}}"

    def note(self, step: Step) -> str:
        """The note for the step's role, told the symbols it reads (`s`) and its own (`me`)."""
        note = self.notes.get(step.desc.role)
        if not note:
            return ""
        symbols = [self.t.symbol(n) for n in step.operands]
        row = steps.jacobian_row(step, self.book) + 1 if getattr(step, "jacobian_of", "") else 0
        return from_string(note).render(**self._context, s=symbols, me=step.desc.symbol, row=row)

    def constants_used(self) -> dict[str, object]:
        """Which constants the steps this view shows use: the scores' 1/√d_k, GELU's, and
        the settings by symbol (a handout of one chapter names only what it needs)."""
        shown = [s for s in self.t.steps if not self.selective or s.name in self.picked]
        consts = {k for s in shown for k in getattr(s, "consts", {})}
        # LayerNorm's ε is \varepsilon, AdamW's (a step with a learning rate) \epsilon.
        values = {
            ("adam_eps" if k == "eps" and "lr" in s.consts else k): v
            for s in shown
            for k, v in getattr(s, "consts", {}).items()
        }
        formulas = {s.formula.name for s in shown if isinstance(s, Elementwise)}
        settings = {"eps": r"\varepsilon", "beta1": r"\beta_1", "beta2": r"\beta_2"}
        settings |= {"lr": r"\eta", "adam_eps": r"\epsilon", "weight_decay": r"\lambda"}
        gelu = bool(formulas & {"gelu", "gelu_backward"})
        derived = [rf"1/\sqrt{{d_k}} = {self.f.const(derived_const(self.scale))}"] * (
            "scale" in consts
        ) + [rf"\sqrt{{2/\pi}} = {self.f.const(hand.SQRT_2_OVER_PI)}"] * gelu
        kinds = formulas | {s.kind for s in shown if isinstance(s, RowWise)}
        return {
            "derived": NoEscape(" and ".join(map(_m, derived))),
            "gelu": gelu,
            "functions": _listed(f for f, uses in FUNCTIONS if kinds & uses),
            "written": NoEscape(_listed(w for w, uses in ON_THE_WAY if kinds & uses)),
            # With their values: a handout is the student's only page, and a symbol alone
            # leaves ε unknown.
            "settings": NoEscape(
                ", ".join(
                    _m(f"{sym} = {self.f.const(values[k])}")
                    for k, sym in settings.items()
                    if k in values
                )
            ),
        }

    @property
    def scale(self) -> float:
        """The attention scores' 1/√d_k."""
        return self.t.find("scores").consts["scale"]

    # --- matrices ----------------------------------------------------------------------
    def labels(self, name: str, axis: int) -> list[str] | None:
        """Row (axis 0) or column (axis 1) labels: vocabulary words where rows are tokens."""
        desc = self.t.desc(name)
        if (desc.rows if axis == 0 else desc.cols) != "vocab":
            return None
        return [rf"\textit{{{tex_escape(w)}}}" for w in shown_words(self.c.vocab)]

    def label_kw(self, name: str) -> dict[str, object]:
        ndim = self.t[name].ndim
        return {
            "row_labels": self.labels(name, 0),
            "col_labels": self.labels(name, 1) if ndim == 2 else None,
        }

    def heading(self, name: str) -> str:
        """A matrix's title: its symbol and shape."""
        return rf"{_m(self.symbol(name))}\enspace{_m(shape(self.t[name].shape))}"

    def matrix(self, name: str, title: str | None = None) -> str:
        title = self.heading(name) if title is None else title
        step = self.t.producer(name)

        def unneeded(idx: tuple[int, ...]) -> bool:  # QKᵀ above the diagonal: masked next
            return step is not None and steps.masked_product(step, idx) == "unneeded"

        return number_table(
            self.book.nums(name),
            self.layout,
            title=title,
            again=_m(self.symbol(name)),
            **{"faint" if self.shows_unneeded else "unneeded": unneeded},
            **self.label_kw(name),
        )

    def jacobians(self, step: Step, every: bool = True) -> list[str]:
        """A Jacobian step's matrices J_i, one per row (or just the first)."""
        if not (isinstance(step, Contraction) and step.kind == "jacobian"):
            return []
        rows = range(step.jacobians.shape[0]) if every else range(1)
        tables = [
            number_table(
                self.book.jacobian(step.name, i),
                self.layout,
                title=rf"$J_{{{i + 1}}}$, position {i + 1}",
                again=rf"$J_{{{i + 1}}}$",
            )
            for i in rows
        ]
        return [side_by_side(tables)]

    def adam(self, p: str) -> dict[str, str]:
        """The names of the AdamW table's columns for parameter p, by role: θ itself, its
        gradient g (what m was computed from), m, v, m̂, v̂, θ'."""
        updates = {s.desc.role: s.name for s in self.t.updates(p)}
        return {"theta": p, "g": self.t.step(updates["m"]).operands[0]} | updates

    def adam_example(self, p: str) -> tuple[int, ...]:
        """The AdamW chapter's worked element of parameter p: the first with a non-zero
        gradient (the PAD row's gradient is zero, which would make a dull example)."""
        nonzero = np.argwhere(self.t[self.adam(p)["g"]] != 0)
        return tuple(int(i) for i in nonzero[0]) if len(nonzero) else (0,) * self.t[p].ndim

    def adam_blocks(
        self, names: list[str], rows: list[tuple[int, ...]]
    ) -> tuple[list[float], list[range]]:
        """The widths (pt) of an AdamW table's or grid's columns, one per quantity, each as
        wide as its widest cell among `rows` or its heading; and the columns in blocks
        beside the row labels, as many as fit the line."""
        cells = [max(cell_width(self.book.nums(x)[i].cell) for i in rows) for x in names]
        widths = [max(FOOTNOTE_SCALE * w, ADAM_HEAD) + 2 * TABCOLSEP for w in cells]
        return widths, column_blocks(widths, self.layout.text_width - ADAM_LABEL)

    def adam_repeats(self) -> set[str]:
        """{m̂, v̂} when, entry for entry, m̂ = g and v̂ = v/(1 − β₂) (so at t = 1 in the printed
        chain): the tables then print them once as a rule, not as columns; else nothing."""
        beta2 = config_const(self.c.beta2)
        same_m = same_v = True
        for n in self.param_names:
            a = {k: self.book.values[x] for k, x in self.adam(n).items()}
            g, m_hat, v, v_hat = a["g"], a["m_hat"], a["v"], a["v_hat"]
            same_m &= all(x == y for x, y in zip(g.ravel(), m_hat.ravel(), strict=True))
            same_v &= all(
                y == x / (1 - beta2) for x, y in zip(v.ravel(), v_hat.ravel(), strict=True)
            )
        return {"m_hat", "v_hat"} if same_m and same_v else set()

    def written_by(self, step: Step) -> Step | None:
        """The step whose written intermediates this one reuses: GELU′ takes u and tanh u as
        the GELU of the same input wrote them."""
        if not (isinstance(step, Elementwise) and step.formula.name == "gelu_backward"):
            return None
        x = step.operands[1]
        return next(
            s
            for s in self.t.steps
            if isinstance(s, Elementwise) and s.formula.name == "gelu" and s.operands == (x,)
        )

    def sigma_written_by(self, step: Step) -> Step | None:
        """The normalization that wrote the σ̃ = √(σ² + ε) a LayerNorm Jacobian or fast
        formula uses: the step that read the same variance."""
        uses = getattr(step, "jacobian_of", "") == "layernorm" or (
            isinstance(step, Elementwise) and step.formula.name == "ln_backward_fast"
        )
        if not uses:
            return None
        var = step.operands[-1] if isinstance(step, Elementwise) else step.operands[2]
        return next(
            s
            for s in self.t.steps
            if isinstance(s, Elementwise) and s.formula.name == "normalize" and s.operands[2] == var
        )

    def written_tables(self, step: Step, label: str = "") -> list[str]:
        """Tables of what a step writes on the way (σ, u, tanh u, e_j, √v̂, …), each with
        its own power of ten; `label` marks the first."""
        kind = self.arithmetic_kind(step)
        if kind == "softmax":
            return [self.softmax_written(step, label)]
        out = []
        for key_, per_row, sym in WRITTEN.get(kind, ()):
            nums = self.book.part_table(step, key_, per_row)
            what = "per row" if per_row else ""
            title = rf"${sym}$ written for ${step.desc.symbol}$ {what}".strip()
            if label and not out:
                title += rf"\label{{{label}}}"
            out.append(number_table(nums, self.layout, title=title, again=f"${sym}$"))
        return out

    def softmax_written(self, step: Step, label: str = "") -> str:
        """A softmax's row maxima, exponentials and sums as one table, row by row, laid out
        as the exercise's grid for them (a masked position's exponential is 0)."""
        s_max, e, total = (self.book.part_table(step, k, r) for k, r, _ in WRITTEN["softmax"])
        rows, cols = step.shape
        values = [[s_max[i], *e[i], total[i]] for i in range(rows)]
        exp = factor_exp([x.value for row in values for x in row if x is not None], self.f.digits)
        nums = np.empty((rows, cols + 2), dtype=object)
        for (i, j), x in np.ndenumerate(np.array(values, dtype=object)):
            nums[i, j] = Num(x.value if x is not None else Decimal(0), exp)
        heads = softmax_written_heads(cols)
        title = rf"$s^{{\max}}$, $e_j$ and $\sum_j e_j$ written for ${step.desc.symbol}$"
        mark = rf"\label{{{label}}}" if label else ""
        return number_table(nums, self.layout, title=title + mark, again=title, col_labels=heads)

    def result_block(self, name: str, label: str = "") -> str:
        """A result as printed in the workbook and the answer key: a matrix, or a line;
        `label` marks where it is printed (inside the table, so on its page)."""
        mark = rf"\label{{{label}}}" if label else ""
        if self.t[name].shape:
            return self.matrix(name, title=self.heading(name) + mark)
        return rf"\par\noindent{mark}${self.symbol(name)} = {self.f(self.book.num(name))}$\par"

    def equation(self, step: Step) -> str:
        return rf"\eqn{{{steps.equation(step, self.t)}}}{{{steps.dims(step, self.t.values)}}}"

    # --- parameters --------------------------------------------------------------------
    def params_read(self, chapter: int) -> list[str]:
        names = [n for s in self.t.chapter(chapter) for n in s.operands if n in self.param_names]
        return list(dict.fromkeys(names))

    def first_use(self) -> dict[int, list[str]]:
        """The chapter that first reads each parameter (among the chapters shown)."""
        seen: set[str] = set()
        out: dict[int, list[str]] = {}
        for number in self.chapters():
            new = [n for n in self.params_read(number) if n not in seen]
            seen.update(new)
            if new:
                out[number] = new
        return out

    def workbook_sections(self) -> dict[str, str]:
        """The worked workbook's section number of each step ("5.3"), whatever this view
        shows: a chapter's sections are its new parameters (if any), then its steps; the
        optimizer's, a section per parameter, its five updates together."""
        seen: set[str] = set()
        out: dict[str, str] = {}
        for ch in self.t.chapters:
            new = [n for n in self.params_read(ch.number) if n not in seen]
            seen.update(new)
            first = 2 if new else 1
            if ch.part == "optimizer":
                for k, p in enumerate(self.param_names):
                    out |= {s.name: f"{ch.number}.{k + first}" for s in self.t.updates(p)}
                continue
            for k, step in enumerate(self.t.chapter(ch.number)):
                out[step.name] = f"{ch.number}.{k + first}"
        return out

    def params_section(self, names: list[str]) -> Section:
        sec = Section("The parameters used here", label=False)
        parts = [self.prose("params_intro.tex.j2", names=[_m(self.symbol(n)) for n in names])]
        parts.append(
            side_by_side(
                [self.matrix(n, title=self.heading(n) + rf"\label{{p:{key(n)}}}") for n in names]
            )
        )
        sec.append(NoEscape("\n".join(parts)))
        return sec

    # --- the whole document ------------------------------------------------------------
    def chapters(self) -> tuple[int, ...]:
        if self.selective:
            return self.selection.chapters
        return tuple(ch.number for ch in self.t.chapters)

    def chapter_body(self, info: ChapterInfo, ch: Chapter) -> None:
        raise NotImplementedError

    def intro(self, info: ChapterInfo) -> NoEscape:
        """The chapter's opening prose, told the symbols of its layer."""
        symbols = {k: NoEscape(v) if isinstance(v, str) else v for k, v in info.symbols.items()}
        return self.prose(f"intro_{info.intro}.tex.j2", ch=info, **symbols)

    def part_figure(self, part: str) -> str:
        """What the page of a part shows under its title: nothing, unless a view says."""
        return ""

    def document(self) -> Document:
        doc = self.skeleton()
        doc.append(self.prose(f"title_{self.view}.tex.j2"))
        doc.append(Command("pagestyle", "fancy"))  # PyLaTeX set "empty" for the title page
        if self.contents:
            doc.append(Command("tableofcontents"))
        doc.append(self.prose(f"front_{self.view}.tex.j2"))
        shown = self.chapters()
        parts_started: set[str] = set()
        for info in self.t.chapters:
            if info.number not in shown:
                continue
            if self.parts and info.part not in parts_started:
                parts_started.add(info.part)
                # Numbers are the workbook's whatever the selection: Part II stays Part II.
                doc.append(NoEscape(rf"\setcounter{{part}}{{{list(PARTS).index(info.part)}}}"))
                figure = self.part_figure(info.part)
                if figure and self.layout.landscape:  # a part's map on a short, wide page
                    figure = rf"\adjustbox{{max totalheight=0.6\textheight}}{{{figure}}}"
                doc.append(NoEscape(rf"\renewcommand{{\partfigure}}{{{figure}}}"))
                doc.append(Part(PARTS[info.part], label=False))
            doc.append(NoEscape(rf"\setcounter{{chapter}}{{{info.number - 1}}}"))
            ch = Chapter(info.title, label=False)
            ch.append(NoEscape(rf"\label{{ch:{info.number}}}"))
            self.chapter_body(info, ch)
            doc.append(ch)
        return doc

    def skeleton(self) -> Document:
        """The document class, packages and preamble, with nothing in the body yet."""
        doc = Document(
            documentclass="book",
            document_options=["10pt", "oneside", "openany", f"{self.opts.paper}paper"],
            geometry_options=self.geometry(),
            lmodern=True,
            page_numbers=False,
        )
        for pkg in (
            "amsmath",
            "amssymb",
            "array",
            "longtable",
            "fancyhdr",
            "needspace",
            "titlesec",
            "xcolor",
        ):
            doc.packages.append(Package(pkg))
        for pkg in self.before_hyperref:
            doc.packages.append(Package(NoEscape(pkg)))
        doc.packages.append(Package("hyperref", options=["hidelinks", "bookmarksnumbered"]))
        doc.packages.append(Package("bookmark"))
        doc.preamble.append(self.prose("preamble.tex.j2"))
        if self.layout.landscape:  # a short, narrow page in 10 pt units: room to stretch
            doc.packages.append(Package("adjustbox"))
            doc.preamble.append(NoEscape(r"\setlength{\emergencystretch}{2em}"))
        if self.opts.sans:  # large print: sans-serif letters and digits, in text and math
            doc.preamble.append(NoEscape(r"\renewcommand{\familydefault}{\sfdefault}"))
            doc.packages.append(Package("sfmath"))
            # sfmath takes the tilde accent from the text font's "~" (a low sign, and a
            # glyph of its own beside the letter): T1's accent tilde sits on the letter
            doc.preamble.append(NoEscape(r'\DeclareMathAccent{\tilde}{\mathalpha}{operators}{"03}'))
        return doc

    def geometry(self) -> dict[str, object]:
        """Margins in true millimetres: at a larger size the pages are magnified whole
        (\\mag), type, tables and figures alike, and the paper and margins stay as they are."""
        if self.opts.font_size == BASE_FONT_SIZE:
            return {"margin": "20mm", "headsep": "4mm"}
        # the magnification first, and the margins in true millimetres: geometry magnifies
        # the paper's own size only under truedimen, and a margin given after it still
        return {
            "mag": round(1000 * self.opts.scale),
            "truedimen": True,
            "landscape": self.layout.landscape,
            "margin": "20truemm",
            "headsep": "4truemm",
        }

    def tex(self) -> str:
        return self.document().dumps()


def printed_tables(t: Trace, book: Book) -> Iterator[tuple[str, np.ndarray]]:
    """Every table of printed numbers (`Num`s) a document can show, with what to call it:
    each quantity, each Jacobian J_i, each table of the values a step writes on the way."""
    for name in book.values:
        yield name, book.nums(name)
    for step in t.steps:
        if step.name not in book.values:  # beyond the chapters this book was made for
            break
        for i in range(len(book.jacobians[step.name])):
            yield f"J_{i + 1} of {step.name}", book.jacobian(step.name, i)
        for part, per_row, _ in WRITTEN.get(Renderer.arithmetic_kind(step), ()):
            yield f"{part} written for {step.name}", book.part_table(step, part, per_row)


def check_widths(c: Config, t: Trace, book: Book, layout: Layout) -> None:
    """Refuse settings whose printed numbers would run off the page, before anything is
    written. A table states one power of ten and prints plain decimals, so a cell has as
    many digits as the table's entries span orders of magnitude, plus the significant
    digits; and a cell may be at most half a worked line wide (`Layout.widest_cell`)."""
    bound = layout.widest_cell
    for what, nums in printed_tables(t, book):
        cells = [x for x in nums.ravel() if x is not None]
        widest = max(cells, key=lambda x: cell_width(x.cell), default=None)
        if widest is None or cell_width(widest.cell) <= bound:
            continue
        sizes = [abs(x.value) for x in cells if x.value.is_finite() and x.value != 0]
        top, low = max(sizes), min(sizes)
        digits = sum(ch.isdigit() for ch in widest.cell)
        raise UnprintableError(
            f"init_scale = {c.init_scale:g}: {what} spans {top.adjusted() - low.adjusted()} "
            f"orders of magnitude ({top:.3e} down to {low:.3e}), so its table would print "
            f"cells of {digits} digits, and at most {digits_within(bound)} fit (half a worked "
            f"line, on {layout.paper} paper); use an --init-scale nearer the default 0.1"
        )


def softmax_written_heads(cols: int) -> list[str]:
    """The columns of what a softmax writes, row by row: its maximum, each e_j, their sum
    (the exercise's grid and the key's table share them)."""
    return [r"$s^{\max}$", *(f"$e_{{{j + 1}}}$" for j in range(cols)), r"$\sum_j e_j$"]


def select(opts: Options, chapters: str | None, sections: str | None, t: Trace) -> Options:
    """The options with a chapter list ("2-5,11") or an exercise list ("3.1-3.3") applied,
    each checked against this model's chapters and exercises."""
    if chapters is not None:
        opts = replace(opts, chapters=select_chapters(chapters, len(t.chapters)))
    if sections is not None:
        opts = replace(opts, sections=select_sections(sections, t))
    return opts


def select_chapters(spec: str, count: int) -> tuple[int, ...]:
    """Chapters from "2-5,11" (already checked for form), each within 1-count; a range is
    checked before it is counted out, so "1-1000000000000" is refused at once."""
    chosen: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        if max(len(lo.lstrip("0")), len((hi or lo).lstrip("0"))) > MAX_DIGITS:
            raise ConfigError(f"--chapters {spec}: chapters are 1-{count} for this model")
        first, last = int(lo), int(hi or lo)
        if first > last:
            raise ConfigError(f"--chapters {spec}: {part.strip()} runs backwards")
        if not 1 <= first <= last <= count:
            raise ConfigError(f"--chapters {spec}: chapters are 1-{count} for this model")
        chosen.update(range(first, last + 1))
    return tuple(sorted(chosen))


class Selection:
    """The exercises a view asks (or answers): numbered as in the full exercise book. Steps
    to compute by name (`numbers`, `picked`); derivations by number (`derived`)."""

    def __init__(self, t: Trace, opts: Options) -> None:
        every = tuple(ch.number for ch in t.chapters)
        chapters = opts.chapters or every
        self.numbers = exercise_numbers(t, chapters)
        wanted = opts.sections
        self.picked = {n for n, ex in self.numbers.items() if wanted is None or ex in wanted}
        self.derived = {
            n: asked
            for n, asked in derivation_numbers(t, chapters).items()
            if wanted is None or n in wanted
        }
        computed = {t.step(n).chapter for n in self.picked}
        self.chapters = tuple(sorted(computed | {ch for ch, _ in self.derived.values()}))

    def asked(self, t: Trace, number: int) -> list[Step]:
        return [s for s in t.chapter(number) if s.name in self.picked]

    def derivations(self, number: int) -> list[tuple[str, str]]:
        """(exercise number, topic) of each derivation asked in chapter `number`."""
        return [(n, topic) for n, (ch, topic) in self.derived.items() if ch == number]


def select_sections(spec: str, t: Trace) -> tuple[str, ...]:
    """Exercise numbers from "3.1-3.3,8.2,5" (a bare chapter number means all its exercises),
    each one the full exercise book has; they keep the book's numbering."""
    numbers = book_numbers(t)

    def span(end: str) -> tuple[int, int]:
        end = ".".join(
            k.lstrip("0") or "0" for k in end.split(".")
        )  # 02.1 is 2.1, as in --chapters
        """The first and last index in `numbers` that `end` ("3.2" or "3") stands for."""
        inside = [i for i, n in enumerate(numbers) if n == end or n.split(".")[0] == end]
        if not inside:
            chapter = end.split(".")[0]
            count = sum(1 for n in numbers if n.split(".")[0] == chapter)
            has = f"chapter {chapter} has {count} exercises" if count else "no such chapter"
            raise ConfigError(f"--sections {spec}: exercise {end}: {has}")
        return inside[0], inside[-1]

    chosen: set[str] = set()
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        first, last = span(lo)[0], span(hi or lo)[1]
        if first > last:
            raise ConfigError(f"--sections {spec}: {part.strip()} runs backwards")
        chosen.update(numbers[first : last + 1])
    return tuple(n for n in numbers if n in chosen)


def exercise_numbers(t: Trace, chapters: tuple[int, ...]) -> dict[str, str]:
    """Exercise numbers by step name, "2.3" = chapter 2, third exercise: shared by the
    exercises and the answer key, so the two can never disagree. The five AdamW steps of one
    parameter (m, v, m̂, v̂, θ') make one exercise: a table with a row per element."""
    out: dict[str, str] = {}
    for number in chapters:
        groups: dict[str, str] = {}
        for step in t.chapter(number):
            group = step.desc.of or step.name
            groups.setdefault(group, f"{number}.{len(groups) + 1}")
            out[step.name] = groups[group]
    return out


def derivation_numbers(t: Trace, chapters: tuple[int, ...]) -> dict[str, tuple[int, str]]:
    """The derivation exercises of these chapters by number, each as (chapter, topic): they
    follow the chapter's last computing exercise, so no computing exercise changes number."""
    computing = exercise_numbers(t, chapters)
    counts = {ch: 0 for ch in chapters}
    for number in set(computing.values()):
        counts[int(number.split(".")[0])] += 1
    out: dict[str, tuple[int, str]] = {}
    for ch, topic in derivations.exercises(t):
        if ch in counts:
            counts[ch] += 1
            out[f"{ch}.{counts[ch]}"] = (ch, topic)
    return out


def book_numbers(t: Trace) -> list[str]:
    """Every exercise number of the full exercise book, in order: a chapter's computing
    exercises, then its derivations."""
    every = tuple(ch.number for ch in t.chapters)
    numbers = list(dict.fromkeys(exercise_numbers(t, every).values()))
    numbers += list(derivation_numbers(t, every))
    return sorted(numbers, key=lambda n: tuple(map(int, n.split("."))))
