"""The worked workbook: every step with its equation, its inputs, its work and its result."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
from pylatex import NoEscape
from pylatex.section import Chapter, Section

from ..trace import Gather, RowWise, Step
from . import steps
from .base import ADAM_PREFIXES, Renderer, _m, key
from .fmt import element, symbol, tex_escape


class Worked(Renderer):
    view = "worked"

    def make_context(self) -> dict[str, object]:
        # Only the worked view may print results outside their sections (the title page).
        return super().make_context() | {"loss": _m(self.f(float(self.t["loss"])))}

    def chapter_body(self, number: int, ch: Chapter) -> None:
        ch.append(self.prose(f"chapter{number:02d}.tex.j2"))
        if number == 13:
            self.adamw_chapter(ch)
            return
        first = self.first_use()
        if number in first:
            ch.append(self.params_section(first[number]))
        for step in self.t.chapter(number):
            ch.append(self.step_section(step))

    def section_numbers(self) -> dict[str, str]:
        """The section ("2.3") where each step is worked, as chapter_body lays them out."""
        out: dict[str, str] = {}
        first = self.first_use()
        for number in self.chapters():
            k = 1 if number in first else 0
            if number == 13:
                for n in self.param_names:
                    k += 1
                    out |= {f"{p}{n}": f"{number}.{k}" for p in ADAM_PREFIXES}
                continue
            for step in self.t.chapter(number):
                k += 1
                out[step.name] = f"{number}.{k}"
        return out

    # --- which elements to work out ----------------------------------------------------
    def worked(self, step: Step) -> Iterator[tuple[int, ...]]:
        if self.opts.detail == "results":
            return
        for idx in np.ndindex(step.shape):
            if self.opts.detail == "sample" and idx and idx[0] != 0:
                return
            yield idx

    def masked_note(self, step: Step, idx: tuple[int, ...]) -> str | None:
        """Entries above the diagonal of QKᵀ and of its gradient are masked: not expanded."""
        base = steps.masked_product(step, idx)
        if base is None:
            return None
        lhs = element(step.name, idx)
        later = f"position {idx[1] + 1} comes after {idx[0] + 1}"
        if base == "QK":
            return rf"{lhs}\ \text{{not needed: masked in the next step ({later})}}"
        return rf"{lhs} = 0 \quad\text{{(masked: {later})}}"

    def work_lines(self, step: Step) -> Iterable[str]:
        if isinstance(step, Gather) and step.kind in ("lookup", "concat", "slice"):
            return  # copies: the note and the result say it all
        if isinstance(step, RowWise) and step.kind == "softmax":
            rows = sorted({idx[0] for idx in self.worked(step)})
            for i in rows:
                yield from steps.softmax_row(step, self.t.values, i, self.f)
            return
        for idx in self.worked(step):
            note = self.masked_note(step, idx)
            yield note or steps.work(step, self.t.values, idx, self.f)

    # --- a step ------------------------------------------------------------------------
    def ref(self, name: str) -> str:
        """Where a quantity was computed (or, for a parameter, listed)."""
        sym = _m(symbol(name))
        if self.t.producer(name) is None:
            return rf"{sym} (parameter, p.~\pageref{{p:{key(name)}}})"
        return rf"{sym} (\S\ref{{s:{key(name)}}}, p.~\pageref{{s:{key(name)}}})"

    def step_section(self, step: Step) -> Section:
        sec = Section(NoEscape(self.title(step.name)), label=False)
        body = [rf"\label{{s:{key(step.name)}}}", self.equation(step), self.note(step)]
        body.append(r"\uses{" + "; ".join(self.ref(n) for n in dict.fromkeys(step.operands)) + "}")
        body += self.jacobians(step, every=self.opts.detail == "full")
        lines = list(self.work_lines(step))
        if lines:
            body += [r"\begin{work}", *(rf"\ex{{{line}}}" for line in lines), r"\end{work}"]
        body.append(self.result_block(step.name))
        sec.append(NoEscape("\n".join(b for b in body if b)))
        return sec

    # --- AdamW -------------------------------------------------------------------------
    def adamw_chapter(self, ch: Chapter) -> None:
        first = self.first_use().get(13, [])
        if first:
            ch.append(self.params_section(first))
        for n in self.param_names:
            sec = Section(
                NoEscape(rf"\texorpdfstring{{{_m(symbol(n))}}}{{{tex_escape(n)}}}"), label=False
            )
            origin = self.adam_example(n)
            names = [f"{p}{n}" for p in ADAM_PREFIXES]
            body = [rf"\label{{s:{key(x)}}}" for x in names] + [r"\begin{work}"]
            body += [
                rf"\ex{{{steps.work(self.t.step(x), self.t.values, origin, self.f)}}}"
                for x in names
            ]
            sec.append(NoEscape("\n".join([*body, r"\end{work}"])))
            ch.append(sec)
        table = Section("Every parameter, before and after", label=False)
        table.append(self.prose("adamw_table_intro.tex.j2"))
        table.append(NoEscape(self.adamw_table()))
        ch.append(table)

    def adamw_table(self) -> str:
        f = self.f
        heads = (r"\theta", "g", "m", "v", r"\hat m", r"\hat v", r"\theta'")
        cols = " & ".join(f"${h}$" for h in heads)
        lines = [r"\begin{adamtable}", rf"\textit{{element}} & {cols} \\ \hline \endhead"]
        for n in self.param_names:
            arrays = [self.t[n], self.t[f"d.{n}"], *(self.t[f"{p}{n}"] for p in ADAM_PREFIXES)]
            for idx in np.ndindex(self.t[n].shape):
                nums = " & ".join(f"${f(float(a[idx]))}$" for a in arrays)
                lines.append(rf"${element(n, idx)}$ & {nums} \\")
        lines.append(r"\end{adamtable}")
        return "\n".join(lines)
