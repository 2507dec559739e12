"""The worked workbook as one LaTeX document: PyLaTeX for structure, Jinja2 for prose."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import jinja2
import numpy as np
from pylatex import Command, Document, NoEscape, Package
from pylatex.section import Chapter, Part, Section

from .. import __version__
from .. import params as params_mod
from ..config import Config
from ..trace import CHAPTERS, Contraction, Elementwise, Gather, RowWise, Step, Trace
from . import steps as S
from .fmt import NumberFormat, element, shape, symbol, tex_escape
from .matrix import Layout, number_table

TEMPLATES = Path(__file__).resolve().parent.parent.parent / "templates"
DETAILS = ("full", "sample", "results")
PAPERS = ("a4", "letter")
PARTS = {1: "Forward pass", 8: "Backward pass", 13: "Optimization"}


@dataclass(frozen=True)
class Options:
    detail: str = "full"
    decimals: int = 4
    paper: str = "a4"


def key(name: str) -> str:
    """A LaTeX label key for a trace name."""
    return re.sub(r"[^A-Za-z0-9]", "-", name)


def _finalize(value: object) -> str:
    """Jinja's last word on every {{ }}: text is escaped unless marked NoEscape."""
    if isinstance(value, NoEscape):
        return value
    return tex_escape(str(value))


def jinja_env() -> jinja2.Environment:
    return jinja2.Environment(
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


def _m(tex: str) -> NoEscape:
    """Inline math for a template."""
    return NoEscape(f"${tex}$")


class Workbook:
    """Renders one trace as the worked workbook (and, later, its other views)."""

    def __init__(self, c: Config, t: Trace, opts: Options) -> None:
        self.c, self.t, self.opts = c, t, opts
        self.f = NumberFormat(opts.decimals)
        self.layout = Layout(opts.paper)
        self.env = jinja_env()
        self.titles: dict[str, str] = self.env.get_template("steps.tex.j2").module.titles
        self.param_names = params_mod.names(c)

    # --- helpers ----------------------------------------------------------------------
    def prose(self, template: str, **extra: object) -> NoEscape:
        return NoEscape(self.env.get_template(template).render(**self.context(), **extra))

    def context(self) -> dict[str, object]:
        c = self.c
        counts = params_mod.count(c)
        return {
            "c": c,
            "m": _m,
            "f": self.f,
            "opts": self.opts,
            "version": __version__,
            "sentence": c.sentence,
            "words": [(i, w) for i, w in enumerate(c.vocab)],
            "tokens": [(pos + 1, tok, c.vocab[tok]) for pos, tok in enumerate(c.tokens)],
            "counts": [(_m(symbol(n)), _m(shape(self.t[n].shape)), f"{k:,}")
                       for n, k in counts.items()],  # fmt: skip
            "total": f"{sum(counts.values()):,}",
            "loss": _m(self.f(float(self.t["loss"]))),
            "sqrt_dk_inv": _m(self.f(self.t.step("scores.0").consts["scale"])),
            "n_proj": sum(1 for s in self.t.chapter(2)),
            "n_predict": self.t.step("loss").count,
            "T": c.T,
            "dim": lambda *n: r"[" + r"\times ".join(map(str, n)) + "]",
            "eps_ln": NumberFormat.const(c.ln_eps),
            "lr": NumberFormat.const(c.lr),
            "beta1": NumberFormat.const(c.beta1),
            "beta2": NumberFormat.const(c.beta2),
            "eps_adam": NumberFormat.const(c.adam_eps),
            "wd": NumberFormat.const(c.weight_decay),
            "init_scale": NumberFormat.const(c.init_scale),
            "title": "One Training Step of a Transformer",
        }

    def title(self, name: str) -> str:
        grad = name.startswith("d.")
        base, _, head = name[2 if grad else 0 :].partition(".")
        for prefix in ("m_hat", "v_hat", "m", "v", "updated"):
            if base == prefix:
                base = prefix
        text = self.titles.get(("d." if grad else "") + base, base)
        return text.format(h=int(head) + 1 if head else "")

    def ref(self, name: str) -> str:
        """Where a quantity was computed (or, for a parameter, listed)."""
        sym = _m(symbol(name))
        if self.t.producer(name) is None:
            return rf"{sym} (parameter, p.~\pageref{{p:{key(name)}}})"
        return rf"{sym} (\S\ref{{s:{key(name)}}}, p.~\pageref{{s:{key(name)}}})"

    def labels(self, name: str, axis: int) -> list[str] | None:
        """Row (axis 0) or column (axis 1) labels: vocabulary words where rows are tokens."""
        base = name.split(".")[-2] if name.count(".") > 1 else name.removeprefix("d.")
        base = base.split(".")[0]
        words = [rf"\textit{{{tex_escape(w)}}}" for w in self.c.vocab]
        if axis == 0 and base in ("E_token", "W_lm"):
            return words
        if axis == 1 and base in ("logits", "probs"):
            return words
        return None

    def matrix(self, name: str, values: np.ndarray | None = None) -> str:
        a = self.t[name] if values is None else values
        return number_table(a, self.f, self.layout, row_labels=self.labels(name, 0),
                            col_labels=self.labels(name, 1) if a.ndim == 2 else None)  # fmt: skip

    # --- which elements to work out -------------------------------------------------------
    def worked(self, step: Step) -> Iterator[tuple[int, ...]]:
        detail = self.opts.detail
        if detail == "results" or not step.shape:
            if step.shape == () and detail != "results":
                yield ()
            return
        for idx in np.ndindex(step.shape):
            if detail == "sample" and idx[0] != 0:
                return
            yield idx

    def masked_note(self, step: Step, idx: tuple[int, ...]) -> str | None:
        """Entries above the diagonal of QKᵀ and of its gradient are masked: not expanded."""
        base = step.name.rsplit(".", 1)[0]
        if base not in ("QK", "d.scores") or len(idx) != 2 or idx[1] <= idx[0]:
            return None
        lhs = element(step.name, idx)
        later = f"position {idx[1] + 1} comes after {idx[0] + 1}"
        if base == "QK":
            return rf"{lhs}\ \text{{not needed: masked in the next step ({later})}}"
        return rf"{lhs} = 0 \quad\text{{(masked: {later})}}"

    # --- a step --------------------------------------------------------------------------
    def step_section(self, step: Step) -> Section:
        sec = Section(NoEscape(tex_escape(self.title(step.name))), label=False)
        sec.append(NoEscape(rf"\label{{s:{key(step.name)}}}"))
        note = self.env.get_template("steps.tex.j2").module.notes.get(self.note_key(step.name))
        body = [rf"\eqn{{{S.equation(step)}}}{{{S.dims(step, self.t.values)}}}"]
        if note:
            body.append(self.env.from_string(note).render(**self.context(), step=step))
        uses = [self.ref(n) for n in dict.fromkeys(step.operands)]
        body.append(r"\uses{" + "; ".join(uses) + "}")
        if isinstance(step, Elementwise) or isinstance(step, Contraction) and step.kind != "matmul":
            pass
        body += self.extra(step)
        lines = list(self.work_lines(step))
        if lines:
            body.append(r"\begin{work}")
            body += [rf"\ex{{{line}}}" for line in lines]
            body.append(r"\end{work}")
        body.append(r"\result{" + _m(symbol(step.name)) + "}")
        body.append(self.matrix(step.name))
        sec.append(NoEscape("\n".join(body)))
        return sec

    def note_key(self, name: str) -> str:
        grad = name.startswith("d.")
        return ("d." if grad else "") + name[2 if grad else 0 :].split(".")[0]

    def extra(self, step: Step) -> list[str]:
        """What a step needs shown before its work: Jacobians, the token lookup."""
        out: list[str] = []
        if isinstance(step, Contraction) and step.kind == "jacobian":
            rows = range(step.jacobians.shape[0]) if self.opts.detail == "full" else range(1)
            for i in rows:
                out.append(rf"\matcaption{{$J^{{({i + 1})}}$, position {i + 1}}}")
                out.append(number_table(step.jacobians[i], self.f, self.layout))
        return out

    def work_lines(self, step: Step) -> Iterable[str]:
        if isinstance(step, Gather) and step.kind in ("lookup", "concat", "slice"):
            return
        if isinstance(step, RowWise) and step.kind == "softmax":
            rows = range(step.shape[0]) if self.opts.detail == "full" else range(1)
            if self.opts.detail == "results":
                return
            for i in rows:
                yield from S.softmax_row(step, self.t.values, i, self.f)
            return
        for idx in self.worked(step):
            note = self.masked_note(step, idx)
            yield note if note else S.work(step, self.t.values, idx, self.f)

    # --- parameters ----------------------------------------------------------------------
    def first_use(self) -> dict[int, list[str]]:
        """Each parameter is listed in full in the chapter that first reads it."""
        seen: set[str] = set()
        out: dict[int, list[str]] = {}
        for s in self.t.steps:
            for n in s.operands:
                if n in self.param_names and n not in seen:
                    seen.add(n)
                    out.setdefault(s.chapter, []).append(n)
        return out

    def params_section(self, names: list[str]) -> Section:
        sec = Section("The parameters used here", label=False)
        parts = [self.prose("params_intro.tex.j2", names=[_m(symbol(n)) for n in names])]
        for n in names:
            parts.append(rf"\paramhead{{{_m(symbol(n))}}}{{{_m(shape(self.t[n].shape))}}}"
                         rf"\label{{p:{key(n)}}}")  # fmt: skip
            parts.append(self.matrix(n))
        sec.append(NoEscape("\n".join(parts)))
        return sec

    # --- AdamW ---------------------------------------------------------------------------
    def adamw_chapter(self, ch: Chapter) -> None:
        for n in self.param_names:
            sec = Section(NoEscape(rf"\texorpdfstring{{{_m(symbol(n))}}}{{{tex_escape(n)}}}"), label=False)
            first = (0,) * self.t[n].ndim
            lines = [S.work(self.t.step(f"{k}.{n}"), self.t.values, first, self.f)
                     for k in ("m", "v", "m_hat", "v_hat", "updated")]  # fmt: skip
            body = [rf"\label{{s:updated-{key(n)}}}", r"\begin{work}"]
            body += [rf"\ex{{{x}}}" for x in lines] + [r"\end{work}"]
            sec.append(NoEscape("\n".join(body)))
            ch.append(sec)
        table = Section("Every parameter, before and after", label=False)
        table.append(self.prose("adamw_table_intro.tex.j2"))
        table.append(NoEscape(self.adamw_table()))
        ch.append(table)

    def adamw_table(self) -> str:
        f = self.f
        head = (r"\theta & g & m & v & \hat m & \hat v & \theta'")
        cols = " & ".join(f"${h}$" for h in head.split(" & "))
        lines = [r"\begin{adamtable}", rf"\textit{{element}} & {cols} \\ \hline \endhead"]
        for n in self.param_names:
            arrays = [self.t[n], self.t[f"d.{n}"]] + [
                self.t[f"{k}.{n}"] for k in ("m", "v", "m_hat", "v_hat", "updated")]  # fmt: skip
            for idx in np.ndindex(self.t[n].shape):
                nums = " & ".join(f"${f(float(a[idx]))}$" for a in arrays)
                lines.append(rf"${element(n, idx)}$ & {nums} \\")
        lines.append(r"\end{adamtable}")
        return "\n".join(lines)

    # --- the whole document ----------------------------------------------------------------
    def document(self) -> Document:
        doc = Document(
            documentclass="book",
            document_options=["10pt", "oneside", "openany", f"{self.opts.paper}paper"],
            geometry_options={"margin": "20mm", "headsep": "4mm"},
            lmodern=True,
            page_numbers=False,
        )
        for pkg in ("amsmath", "amssymb", "array", "longtable", "fancyhdr", "needspace", "titlesec"):
            doc.packages.append(Package(pkg))
        doc.packages.append(Package("hyperref", options=["hidelinks", "bookmarksnumbered"]))
        doc.packages.append(Package("bookmark"))
        doc.preamble.append(self.prose("preamble.tex.j2"))
        doc.append(self.prose("title.tex.j2"))
        doc.append(Command("tableofcontents"))
        doc.append(self.prose("front.tex.j2"))
        first = self.first_use()
        for number, part, title in CHAPTERS:
            if number in PARTS:
                doc.append(Part(PARTS[number], label=False))
            ch = Chapter(title, label=False)
            ch.append(NoEscape(rf"\label{{ch:{number}}}"))
            ch.append(self.prose(f"chapter{number:02d}.tex.j2"))
            if number == 13:
                self.adamw_chapter(ch)
            else:
                if number in first:
                    ch.append(self.params_section(first[number]))
                for step in self.t.chapter(number):
                    ch.append(self.step_section(step))
            doc.append(ch)
        return doc

    def tex(self) -> str:
        return self.document().dumps()


def workbook_tex(c: Config, t: Trace, opts: Options) -> str:
    return Workbook(c, t, opts).tex()
