"""The worked workbook: every step with its equation, its inputs, its work and its result."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from decimal import Decimal
from functools import cached_property

import numpy as np
from pylatex import Document, NoEscape
from pylatex.section import Chapter, Section

from ..hand import dec, sig
from ..printed import single
from ..trace import Chapter as ChapterInfo
from ..trace import Elementwise, Gather, RowWise, Step
from . import derivations, figures, steps
from .base import ADAM_COLUMNS, Renderer, _m, key, tilde_sigma
from .fmt import element, factor, shown_words, tex_escape

CANCELS = 10  # terms this many times larger than their difference: it keeps few digits
# A block whose longest line has at most this many characters of LaTeX may fit in columns:
# TeX measures it (\worklines), which costs a second typesetting, so longer ones skip that.
SHORT_LINE = 150


NEW_ROW = r"\wbnewrow"  # between groups of lines: in columns, the next group starts a row


def work_block(lines: list[str]) -> list[str]:
    r"""Worked lines, in columns when TeX finds them narrow enough (see \worklines)."""
    body = [line if line == NEW_ROW else rf"\ex{{{line}}}" for line in lines]
    worked = [line for line in lines if line != NEW_ROW]
    if len(worked) >= 4 and max(map(len, worked)) <= SHORT_LINE:
        return [r"\worklines{", *body, "}"]
    return [r"\begin{work}", *body, r"\end{work}"]


PART_WORDS = {"forward": "forward pass", "backward": "backward pass"}


class Worked(Renderer):
    view = "worked"

    def make_context(self) -> dict[str, object]:
        # Only the worked view may print results outside their sections (the title page).
        exact = float(self.t.loss.result)
        return super().make_context() | {
            "loss": _m(f"{exact:.{max(self.opts.digits, 5) - 1}f}"),
            "hand_loss": self.hand_loss(),
        }

    def hand_loss(self) -> str:
        """The loss of the printed chain, when its digits differ from the exact loss's."""
        printed = self.book.num(self.t.loss.name)
        exact = single(dec(float(self.t.loss.result)), self.opts.digits)
        return "" if printed.value == exact.value else _m(self.f(printed))

    def chapter_body(self, info: ChapterInfo, ch: Chapter) -> None:
        number = info.number
        if self.opts.figures:
            ch.append(NoEscape(self.where_am_i(info)))
        ch.append(self.intro(info))
        if derivations.topics(info):
            ch.append(NoEscape(self.derivations_section(info)))
        if info.intro == "loss_grad":
            ch.append(NoEscape(self.finite_differences_section()))
        if info.part == "optimizer":
            self.adamw_chapter(number, ch)
            self.append_drift(number, ch)
            return
        first = self.first_use()
        if number in first:
            ch.append(self.params_section(first[number]))
        for step in self.t.chapter(number):
            ch.append(self.step_section(step))
        self.append_drift(number, ch)

    def append_drift(self, number: int, ch: Chapter) -> None:
        """Under hand arithmetic: the chapter's largest drift from the exact values."""
        if not self.book.hand:
            return
        drift, worst = max((self.book.drift(s), s.name) for s in self.t.chapter(number))
        share = f"{100 * drift:.2g}" if drift else "0"
        ch.append(
            self.prose(
                "drift.tex.j2",
                share=NoEscape(rf"{share}\,\%"),
                where=NoEscape(
                    rf"\S\ref{{s:{key(worst)}}} ({self.title(worst)}, {_m(self.symbol(worst))})"
                ),
                entry=self.entry_drift(number),
            )
        )

    def entry_drift(self, number: int) -> dict[str, object] | None:
        """The chapter's entry that drifted most for its own size: where, how much, its
        printed and exact values and the first significant digit that differs; None when
        every printed digit is the exact value's."""
        found = [(d, s) for s in self.t.chapter(number) if (d := self.book.entry_drift(s))]
        if not found:
            return None
        (share, idx), step = max(found, key=lambda x: x[0][0])
        printed = single(self.book.num(step.name, idx).value, self.opts.digits)
        exact = single(dec(float(np.asarray(step.result)[idx])), self.opts.digits)
        digits = range(1, self.opts.digits + 1)
        off = next((d for d in digits if sig(printed.value, d) != sig(exact.value, d)), None)
        if off is None:
            return None
        return {
            "share": NoEscape(f"{100 * share:.0f}" if share >= 1 else f"{100 * share:.2g}"),
            "entry": NoEscape(_m(element(step.desc.symbol, idx))),
            "where": NoEscape(rf"\S\ref{{s:{key(step.name)}}}"),
            "printed": NoEscape(_m(self.f(printed))),
            "exact": NoEscape(_m(self.f(exact))),
            "digit": off,
            "sign": printed.value * exact.value < 0,
        }

    # --- derivations ---------------------------------------------------------------------
    def derivations_section(self, info: ChapterInfo) -> str:
        """The chapter's derivations: each in full where it is first needed, else its result
        in this chapter's symbols; then one entry with this step's printed numbers."""
        title = "Where the formulas come from"
        out = [
            # an anchor of its own: its bookmark is a section's, not its chapter's
            rf"\section*{{{title}}}\phantomsection\addcontentsline{{toc}}{{section}}{{{title}}}",
            self.prose("derivations_intro.tex.j2", ch=info),
        ]
        for d, full in self.derived.chapter(info):
            out.append(rf"\dhead{{{d.title}}}")
            if full:
                out += [rf"\label{{d:{d.topic}}}{d.lead}", *derivations.lines_tex(d), d.close]
            else:
                out += derivations.restated_tex(d, self.derived.first[d.topic])
            if d.instance is not None:
                out.append(
                    rf"\par\needspace{{4\baselineskip}}\textit{{With numbers.}} {d.instance.text}"
                )
                out += work_block(list(d.instance.lines))
                out.append(d.instance.after)
            if d.topic == "adamw" and self.opts.figures:
                out.append(self.update_figure())
        return "\n".join(x for x in out if x)

    def finite_differences_section(self) -> str:
        """Three parameters nudged by ±Δ in the exact step: the centred difference of the
        losses beside the gradient entry."""
        rows = derivations.finite_differences(self.c, self.t, self.book)
        off = max(
            (
                abs(float(r.printed.value) - float(r.exact)) / abs(float(r.exact))
                for r in rows
                if r.exact
            ),
            default=0.0,
        )
        entries = []
        for r in rows:
            sym = element(self.symbol(r.param), r.idx)
            entries.append(
                (
                    rf"${sym}$ (\S\ref{{s:{key(r.grad)}}})",
                    *(rf"${x}$" for x in (r.plus, r.minus, r.slope, r.exact)),
                    rf"${format(r.printed.value, 'f')}$",
                )
            )
        return self.prose(
            "finite_differences.tex.j2",
            nudge=NoEscape(self.f.const(derivations.NUDGE)),
            rows=[[NoEscape(x) for x in row] for row in entries],
            agree=min(r.agree for r in rows),
            off=NoEscape(f"{100 * off:.2g}"),
            loss_digits=derivations.LOSS_DIGITS,
        )

    def update_figure(self) -> str:
        """Every parameter's AdamW step θ' − θ against its gradient."""
        points = []
        for p in self.param_names:
            cols = self.adam(p)
            g = np.asarray(self.t[cols["g"]], dtype=float).ravel()
            moved = np.asarray(self.t[cols["updated"]], dtype=float) - np.asarray(self.t[p])
            points += list(zip(g.tolist(), moved.ravel().tolist(), strict=True))
        caption = (
            f"Each dot is one of the {len(points):,} parameters: across, its gradient $g$ on a "
            "logarithmic scale each way from 0 (the sign kept); up, its step $\\theta' - "
            "\\theta$. The solid curve is $-\\eta\\, g/(|g| + \\epsilon)$, the dashed lines "
            "$\\pm\\eta$."
        )
        return figures.update_scatter(
            points, lr=self.c.lr, eps=self.c.adam_eps, layout=self.layout, caption=caption
        )

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
        causal = steps.masked_product(step, idx)
        if not causal:
            return None
        lhs = element(step.desc.symbol, idx)
        later = f"position {idx[1] + 1} comes after {idx[0] + 1}"
        # \allowbreak: a line may break between the phrases of a note (text in math cannot)
        if causal == "unneeded":
            phrases = ("not needed:", "masked in the next step", f"({later})")
            return lhs + "".join(rf"\allowbreak\ \text{{{p}}}" for p in phrases)
        return rf"{lhs} = 0 \quad\text{{(masked:}}\allowbreak\ \text{{{later})}}"

    def work_lines(self, step: Step) -> Iterable[str]:
        copy = isinstance(step, Elementwise) and step.formula.name == "copy"
        if copy or (isinstance(step, Gather) and step.kind in ("lookup", "concat", "slice")):
            return  # copies: the note and the result say it all
        if isinstance(step, RowWise) and step.kind == "softmax":
            rows = sorted({idx[0] for idx in self.worked(step)})
            for k, i in enumerate(rows):
                if k:  # each row's working starts a row of its own, at the left
                    yield NEW_ROW
                yield from steps.softmax_row(step, self.book, i, self.f)
            return
        zero: dict[int, str | None] = {}
        for idx in self.worked(step):
            i = idx[0] if idx else 0
            if idx and i not in zero:
                zero[i] = steps.zero_row(step, self.book, i)
                if zero[i]:
                    yield steps.zero_row_line(step, i, zero[i])
            if idx and zero[i]:
                continue
            note = self.masked_note(step, idx)
            yield note or steps.work(step, self.book, idx, self.f)

    # --- a step ------------------------------------------------------------------------
    def ref(self, name: str) -> str:
        """Where a quantity was computed (or, for a parameter, listed)."""
        sym = _m(self.symbol(name))
        if self.t.producer(name) is None:
            return rf"{sym} (parameter, p.~\pageref{{p:{key(name)}}})"
        # the page of its printed table, which a long section can put pages after its start
        return rf"{sym} (\S\ref{{s:{key(name)}}}, p.~\pageref{{r:{key(name)}}})"

    def step_section(self, step: Step) -> Section:
        sec = Section(NoEscape(self.title(step.name)), label=False)
        body = [rf"\label{{s:{key(step.name)}}}", self.equation(step), self.note(step)]
        refs = [self.ref(n) for n in dict.fromkeys(step.operands)]
        gelu = self.written_by(step)
        if gelu is not None:
            where = rf"\S\ref{{s:{key(gelu.name)}}}, p.~\pageref{{s:{key(gelu.name)}}}"
            refs.append(rf"$u$ and $\tanh u$ as written in {where}")
        norm = self.sigma_written_by(step)
        if norm is not None:  # σ̃ is written by the normalization, not with σ²
            tilde = tilde_sigma(self.symbol(norm.operands[2]))
            where = rf"\S\ref{{s:{key(norm.name)}}}, p.~\pageref{{s:{key(norm.name)}}}"
            refs.append(rf"${tilde}$ as written in {where}")
        body.append(r"\uses{" + "; ".join(refs) + "}")
        if self.opts.detail != "results" and getattr(step, "jacobian_of", ""):
            entries = steps.jacobian_entries(step, self.book, self.f)
            body += work_block(entries)
        body += self.jacobians(step, every=self.opts.detail == "full")
        lines = list(self.work_lines(step))
        if lines and self.opts.figures:
            body.append(self.falk(step))
        if lines:
            body += work_block(lines)
        body.append(self.result_block(step.name, label=f"r:{key(step.name)}"))
        if self.opts.figures:
            body.append(self.figure(step))
        if getattr(step, "checks", ""):
            body.append(self.fast_check(step))
        sec.append(NoEscape("\n".join(b for b in body if b)))
        return sec

    def where_am_i(self, info: ChapterInfo) -> str:
        """The chapters of this part as a chain of boxes, this one shaded."""
        chapters = [ch for ch in self.t.chapters if ch.part == info.part]
        if len(chapters) < 2:
            return ""  # a part of one chapter has nothing to map
        # an arrow carries what the next chapter reads from this one (else its last result)
        handed = {a: name for a, b, name in reversed(self.t.flows(info.part)) if b == a + 1}
        boxes = []
        for ch in chapters:
            last = list(self.t.chapter(ch.number))[-1].name
            words = figures.SHORT[ch.intro] + (f" [{ch.layer + 1}]" if ch.layer is not None else "")
            boxes.append((ch.number, words, steps.shape(self.t[handed.get(ch.number, last)].shape)))
        part = {"forward": "forward pass", "backward": "backward pass"}.get(info.part, "update")
        caption = (
            f"Where chapter {info.number} sits in the {part}: each box is a chapter, each arrow "
            "carries its last result, of the shape written on it."
        )
        return figures.model_map(boxes, info.number, caption)

    def part_figure(self, part: str) -> str:
        """The part as a flow diagram on its title page: its chapters as boxes, the results
        they hand on as labelled arrows. A deeper model draws one layer, whose boxes list the
        chapters of every layer, and one arrow from the layer's end back to its start."""
        if not self.opts.figures or part not in ("forward", "backward"):
            return ""
        chapters = [ch for ch in self.t.chapters if ch.part == part]
        layer = {ch.number: ch.layer for ch in chapters}
        layers = list(dict.fromkeys(ch.layer for ch in chapters if ch.layer is not None))
        drawn = layers[0] if layers else None  # the first layer the part meets
        rep: dict[int, int] = {}  # chapter → the chapter whose box stands for it
        for ch in chapters:
            if ch.layer in (None, drawn):
                rep[ch.number] = ch.number
                continue
            mine = [c.number for c in chapters if c.layer == ch.layer]
            theirs = [c.number for c in chapters if c.layer == drawn]
            rep[ch.number] = theirs[mine.index(ch.number)]
        order = list(dict.fromkeys(rep.values()))
        box = {n: order.index(r) for n, r in rep.items()}
        boxes = []
        for number in order:
            topic = next(ch.topic for ch in chapters if ch.number == number)
            tags = ", ".join(str(n) for n, r in rep.items() if r == number)
            boxes.append(rf"\textbf{{{tags}}}\enspace {topic}")
        handed: dict[tuple[int, int], list[str]] = {}
        source: dict[tuple[int, int], tuple[int, int]] = {}  # the chapters a label speaks of
        for a, b, name in self.t.flows(part):
            if layer[a] is not None and layer[b] is not None and not layer[a] == layer[b] == drawn:
                continue  # another layer's copy, or a layer handing on to the next: the loop
            pair = (box[a], box[b])
            if source.setdefault(pair, (a, b)) == (a, b):
                handed.setdefault(pair, []).append(name)
        flows = [figures.Flow(a, b, self.flow_label(names)) for (a, b), names in handed.items()]
        block = [box[ch.number] for ch in chapters if ch.layer == drawn]
        if len(layers) > 1:
            flows.append(figures.Flow(max(block), min(block), "next layer"))
        into, out = ("tokens", "$L$") if part == "forward" else ("$L$", "gradients")
        several = (
            f" Boxes list the chapters of all {len(layers)} layers; the arrow on the left "
            "starts the next layer."
            if len(layers) > 1
            else ""
        )
        skips = any(f.b > f.a + 1 for f in flows)
        caption = (
            f"The {PART_WORDS[part]} as a picture: each box is a chapter (its number in bold), "
            "each arrow a result handed on, with its shape"
            + ("; an arrow on the right skips chapters." if skips else ".")
            + several
        )
        return "\n".join(
            [
                r"\par\vspace{8mm}\normalfont\normalsize",
                figures.flow_diagram(boxes, flows, into, out),
                r"\par\vspace{4mm}",
                rf"{{\centering\begin{{minipage}}{{0.8\linewidth}}\figcaption{{{caption}}}"
                r"\end{minipage}\par}",
            ]
        )

    def flow_label(self, names: list[str]) -> str:
        """An arrow's label: the result it carries and its shape; the first of several."""
        more = r", \dots" if len(names) > 1 else ""
        return _m(rf"{self.symbol(names[0])}{more}\ {steps.shape(self.t[names[0]].shape)}")

    def falk(self, step: Step) -> str:
        """The first worked element of a matrix product (in a row that is not zero by
        construction), laid out as a Falk scheme."""
        if not steps.is_matmul(step):
            return ""
        idx = next(
            (
                i
                for i in self.worked(step)
                if not steps.masked_product(step, i) and not steps.zero_row(step, self.book, i[0])
            ),
            None,
        )
        if idx is None:  # nothing worked (results only), or every row zero
            return ""
        a, b = (self.book.nums(n) for n in step.operands[:2])
        a = a.T if step.transpose[0] else a
        b = b.T if step.transpose[1] else b
        syms = [
            steps.transposed(self.symbol(n), t)
            for n, t in zip(step.operands, step.transpose, strict=False)
        ]
        exps = [self.book.exps[n] for n in (*step.operands[:2], step.name)]
        names = tuple(
            _m(sym) + (rf" (entries ${factor(e)}$)" if e else "")
            for sym, e in zip([*syms[:2], step.desc.symbol], exps, strict=True)
        )
        i, j = idx
        caption = (
            f"Row {i + 1} of the left factor meets column {j + 1} of the right one (both "
            "shaded) at the framed entry, worked below; dots are entries not drawn here."
        )
        result = self.book.num(step.name, idx)
        return figures.falk(a, b, result, idx, names=names, caption=caption, layout=self.layout)

    def skeleton(self) -> Document:
        doc = super().skeleton()
        # TikZ draws the curves, bars and flow diagrams
        if self.opts.figures:
            doc.preamble.append(NoEscape(figures.TIKZ))
        return doc

    def figure(self, step: Step) -> str:
        """The figure drawn from a step's printed values, if it has one: heat maps of the
        attention weights, of the next-token probabilities (and one row's softmax as bars)
        and of a backward chapter's largest weight gradient; GELU's curves."""
        if step.desc.role == "attn":
            return self.attention_map(step)
        if step.desc.role == "probs":
            return self.probs_map(step) + "\n" + self.softmax_bars(step)
        if isinstance(step, Elementwise) and step.formula.name == "gelu":
            return self.gelu_curves(step)
        if step.name in self.largest_gradients:
            return self.gradient_map(step)
        return ""

    def heatmap(self, step: Step, caption: str, **kw: object) -> str:
        """A heat map of a step's printed values, titled with its symbol."""
        nums = self.book.nums(step.name)
        what = _m(step.desc.symbol)
        return figures.heatmap(nums, what=what, caption=caption, layout=self.layout, **kw)

    def attention_map(self, step: Step) -> str:
        scores = self.t.step(step.operands[0])
        caption = (
            "Each row is a position and each column a position it may look at; the darker "
            "the cell, the more weight. A dash marks a later position, masked."
        )
        return self.heatmap(step, caption, masked=lambda idx: steps.is_masked(scores, idx))

    def probs_map(self, step: Step) -> str:
        targets = self.t.find("p_target").tokens
        caption = (
            "Each row is a position and each column a word of the vocabulary; the darker the "
            "cell, the likelier the word comes next. The framed value is the probability of "
            "the word that does come next."
        )
        return self.heatmap(
            step,
            caption,
            marked=lambda idx: idx[0] < len(targets) and idx[1] == targets[idx[0]],
            col_labels=self.labels(step.name, 1),
            legend=r"; framed: the correct next word",
        )

    def softmax_bars(self, step: Step) -> str:
        """Row 1 of the scores and of the probabilities softmax makes of them, as bars."""
        src = step.operands[0]

        def title(name: str) -> str:
            exp = self.book.exps[name]
            return rf"row 1 of {_m(self.symbol(name))}" + (
                rf", entries ${factor(exp)}$" * bool(exp)
            )

        return figures.softmax_bars(
            shown_words(self.c.vocab),
            self.book.nums(src)[0],
            self.book.nums(step.name)[0],
            titles=(title(src), title(step.name)),
            layout=self.layout,
            caption=(
                f"Softmax turns row 1 of {_m(self.symbol(src))} (left) into probabilities "
                "(right) that add up to 1: the larger the score, the longer its bar after."
            ),
        )

    def gelu_curves(self, step: Elementwise) -> str:
        """GELU and GELU' with this step's inputs marked, each at its printed GELU (this
        step) and GELU' (from the backward step that reuses this one's u and tanh u)."""
        xs, ys = self.book.nums(step.operands[0]), self.book.nums(step.name)
        back = next(s for s in self.t.steps if self.written_by(s) is step)
        slopes = self.book.part_table(back, "grad", False)
        marks = [(xs[i].value, ys[i].value, slopes[i].value) for i in np.ndindex(xs.shape)]
        ends = tuple(self.f(pick(xs.ravel(), key=lambda n: n.value)) for pick in (min, max))
        sym = _m(self.symbol(step.operands[0]))
        caption = (
            "GELU (solid) and its slope GELU$'$ (dashed): on the left the whole bend, on the "
            f"right close up over the shaded band where the entries of {sym} lie, each entry "
            "marked at its GELU and at its GELU$'$, which the backward pass multiplies by."
        )
        return figures.gelu_curves(marks, ends, layout=self.layout, caption=caption)

    @cached_property
    def largest_gradients(self) -> set[str]:
        """In each backward chapter, the gradient of its largest weight matrix (by number of
        entries; the first computed, on a tie)."""
        grads = {self.adam(p)["g"] for p in self.param_names if self.t[p].ndim == 2}
        out = set()
        for ch in self.t.chapters:
            found = [s for s in self.t.chapter(ch.number) if s.name in grads]
            if ch.part == "backward" and found:
                out.add(max(found, key=lambda s: math.prod(s.shape)).name)
        return out

    def gradient_map(self, step: Step) -> str:
        caption = (
            f"Each cell is an entry of {_m(step.desc.symbol)}; the darker the cell, the larger "
            "the entry in size, whatever its sign."
        )
        return self.heatmap(
            step,
            caption,
            row_labels=self.labels(step.name, 0),
            col_labels=self.labels(step.name, 1),
            signed=True,
        )

    def fast_check(self, step: Step) -> str:
        """How closely a fast formula's printed result meets the one it computes again; where
        they differ by more than a unit or two, why: the entry is a small difference of larger
        numbers (they nearly cancel), whose rounding reaches several of its digits."""
        other = step.checks
        units = self.book.agreement(step.name, other)
        worst = self.cancellation(step, other) if units > 2 else None
        return self.prose(
            "fast_check.tex.j2",
            units=units,
            where=NoEscape(rf"\S\ref{{s:{key(other)}}} ({_m(self.symbol(other))})"),
            worst=worst,
        )

    def cancellation(self, step: Step, other: str) -> dict[str, object] | None:
        """The entry where the two ways differ most, both printed values, and how many times
        larger the numbers are whose difference it is."""
        here, there = self.book.shown(step.name), self.book.shown(other)
        idx = max(
            np.ndindex(step.shape),
            key=lambda i: abs(here[i] - there[i]) / max((abs(there[i]), Decimal("1e-300"))),
        )
        xs = step.raw_inputs(self.book.values, idx)
        if step.formula.name == "ln_backward_fast":  # (dh − mean dh − x̂ · mean(dh x̂)) / σ
            terms = [xs[0], xs[1], xs[2] * xs[3]]
        elif step.formula.name == "softmax_backward_fast":  # a (da − s)
            terms = [xs[1], xs[2]]
        else:
            return None
        difference = abs(terms[0] - sum(terms[1:], Decimal(0)))
        if difference == 0:
            return None
        ratio = max(abs(t) for t in terms) / difference
        if ratio < CANCELS:
            return None  # not a cancellation: the rounding alone, as the sentence before says
        return {
            "el": _m(element(step.desc.symbol, idx)),
            "here": _m(self.f(self.book.num(step.name, idx))),
            "there": _m(self.f(self.book.num(other, idx))),
            "ratio": f"{float(ratio):,.0f}",
        }

    # --- AdamW -------------------------------------------------------------------------
    def adamw_chapter(self, number: int, ch: Chapter) -> None:
        first = self.first_use().get(number, [])
        if first:
            ch.append(self.params_section(first))
        for n in self.param_names:
            sec = Section(
                NoEscape(
                    rf"\texorpdfstring{{{_m(self.symbol(n))}}}{{{tex_escape(self.t.desc(n).title)}}}"
                ),
                label=False,
            )
            origin = self.adam_example(n)
            names = [s.name for s in self.t.updates(n)]
            body = [rf"\label{{s:{key(x)}}}" for x in names]
            every = rf"\S\ref{{adamw:table}}, p.~\pageref{{r:{key(names[0])}}}"
            body += [
                rf"\uses{{$\theta$: {self.ref(n)}; $g$: {self.ref(self.adam(n)['g'])}; "
                rf"every element: {every}}}",
                r"\begin{work}",
            ]
            body += [
                rf"\ex{{{steps.work(self.t.step(x), self.book, origin, self.f)}}}" for x in names
            ]
            sec.append(NoEscape("\n".join([*body, r"\end{work}"])))
            ch.append(sec)
        table = Section("Every parameter, before and after", label=False)
        table.append(NoEscape(r"\label{adamw:table}"))
        table.append(self.prose("adamw_table_intro.tex.j2", repeats=bool(self.adam_repeats())))
        table.append(NoEscape(self.adamw_table()))
        ch.append(table)

    def adamw_table(self) -> str:
        """θ, g, the moments and θ' of every parameter, a table per tensor whose heading (on
        every page it runs over) gives each column's power of ten; a column the first step
        makes equal to another (m̂ = g, v̂ = v/(1 − β₂) at t = 1) is stated once, not printed."""
        cols = [c for c in ADAM_COLUMNS if c[0] not in self.adam_repeats()]
        lines = []
        for n in self.param_names:
            # where each of the tensor's updates is printed in full
            lines.append("".join(rf"\label{{r:{key(s.name)}}}" for s in self.t.updates(n)))
            names = [self.adam(n)[role] for role, _ in cols]
            rows = list(np.ndindex(self.t[n].shape))
            heads = [
                f"${head}\\,{factor(self.book.exps[x])}$"
                for (_, head), x in zip(cols, names, strict=True)
            ]
            # a table too wide for the line is printed in blocks of columns, one after another
            for block in self.adam_blocks(names, rows)[1]:
                lines += [
                    rf"\begin{{adamtable}}{{{len(block)}}}",
                    # the gap keeps a first row's superscripts, (W_Q^{(1)}), clear of the rule
                    rf"{_m(self.symbol(n))} & {' & '.join(heads[k] for k in block)} \\ \hline "
                    r"\noalign{\vspace{2pt}} \endhead",
                ]
                for idx in rows:
                    cells = " & ".join(f"${self.book.nums(names[k])[idx].cell}$" for k in block)
                    lines.append(rf"${element(self.symbol(n), idx)}$ & {cells} \\")
                lines.append(r"\end{adamtable}")
        return "\n".join(lines)
