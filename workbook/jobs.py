"""Relay jobs: the selected computation of a step cut into cards of a few minutes each.

Everything here is at the level of single entries. `Flow` knows, for every entry of the
trace, whether it is set without arithmetic (a masked score is −∞, a masked weight 0, a
gradient of the last position 0 by construction: `fixed`), which entries it reads (through
lookups, slices and concatenations, which only copy, to the entries that were computed),
and what it costs by hand. `cut` groups the computed entries into jobs, a row of a step at
a time: an element-wise step joins the job that makes its deepest inputs (GELU with its
hidden values, a scaling with its dot products), a row reduction the job it adds no input
to (a variance with its mean), a softmax row the job that makes its scores when nothing
else reads them, each while the card stays under CHAIN_SECONDS (a round and a hand-off
saved); a longer row of independent entries is then cut into columns (SPLIT_SECONDS), and
small jobs of one kind at one depth share a card (PACK_SECONDS).

Timing is a model (`Pace`), stated on the plan: a product or a function value takes a
calculator's few keystrokes, writing a rounded value a few seconds more.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from decimal import Decimal

import numpy as np

from .hand import NEG_INF, ZERO
from .printed import Book
from .render.matrix import even_blocks
from .trace import Cell, Contraction, Elementwise, Gather, Index, RowWise, Step, Trace, cell_names

UNNEEDED = None  # an entry no later step reads (QKᵀ above the diagonal): never computed
# Values a step writes on the way, once per row: a softmax's maximum and sum, a LayerNorm σ̃.
PER_ROW_PARTS = ("max", "sum", "sigma")
# Element-wise formulas that are 0 wherever their first input is, and those 0 wherever all
# their inputs are (the rows of the backward pass that the last position leaves zero).
ZERO_WITH_FIRST = {"mul", "copy", "scale", "gelu_backward", "ln_backward_fast"}
ZERO_WITH_FIRST |= {"adam_m", "adam_v", "adam_m_hat", "adam_v_hat"}  # moments of a zero g
ZERO_WITH_ALL = {"add", "sum", "embed"}

# What one entry of an element-wise formula costs by hand: (multiplications and divisions,
# function values such as exp or tanh, additions and subtractions).
FORMULA_COST = {
    "embed": (0, 0, 1),
    "add": (0, 0, 1),
    "copy": (0, 0, 0),
    "sum": (0, 0, 1),  # and one more per further term
    "mul": (1, 0, 0),
    "scale_mask": (1, 0, 0),
    "scale": (1, 0, 0),
    "gelu": (6, 1, 2),  # x³ (2), ·c, ·√(2/π), ·0.5, ·x; tanh; x + c·x³, 1 + tanh u
    "gelu_backward": (9, 1, 4),
    "normalize": (1, 0, 1),  # (x − μ) / σ̃; σ̃ itself is counted once per row
    "affine": (1, 0, 1),
    "nll": (0, 1, 0),
    "ce_backward": (1, 0, 1),
    "probs_backward": (2, 0, 0),
    "ln_backward_fast": (2, 0, 2),
    "softmax_backward_fast": (1, 0, 1),
    "adam_m": (1, 0, 0),
    "adam_v": (2, 0, 0),
    "adam_m_hat": (1, 0, 1),
    "adam_v_hat": (1, 0, 1),
    "adam_update": (4, 1, 3),
}


@dataclass(frozen=True)
class Cost:
    """Hand work: multiplications and divisions, function values (exp, ln, tanh, √),
    additions and subtractions, values written down (each rounded first) and values copied
    from other cards."""

    products: int = 0
    functions: int = 0
    additions: int = 0
    writes: int = 0
    copies: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.products + other.products,
            self.functions + other.functions,
            self.additions + other.additions,
            self.writes + other.writes,
            self.copies + other.copies,
        )


@dataclass(frozen=True)
class Pace:
    """Seconds per piece of hand work: the lesson estimate's assumptions, printed on the
    plan so a teacher can scale them to a class."""

    product: float = 12.0  # a multiplication (or division) and adding it to a running sum
    function: float = 12.0  # exp, ln, tanh or √ of a written value
    addition: float = 6.0
    write: float = 6.0  # rounding a value to the digits and writing it in a box
    copy: float = 6.0  # finding a value on the poster and copying it onto the card
    card: float = 30.0  # reading a card before starting it
    check: float = 4.0  # adding one more value into the card's check total
    handoff: float = 60.0  # per round: results to the poster, the next cards' inputs from it

    def seconds(self, c: Cost, boxes: int = 0) -> float:
        return (
            self.product * c.products
            + self.function * c.functions
            + self.addition * c.additions
            + self.write * c.writes
            + self.copy * c.copies
            + self.card
            + self.check * max(boxes - 1, 0)
        )


PACE = Pace()
SIBLING_SECONDS = 240.0  # independent entries of one step share a card up to this long
CHAIN_SECONDS = 540.0  # a step joins the card that makes its inputs up to this long


def is_copy(step: Step | None) -> bool:
    """A step that only copies another's entries (dF = dY beside a residual connection)."""
    return isinstance(step, Elementwise) and step.formula.name == "copy"


class Flow:
    """The entry-level data flow of a trace's steps up to chapter `last`."""

    def __init__(self, t: Trace, book: Book, last: int) -> None:
        self.t, self.book = t, book
        self.steps = [s for s in t.steps if s.chapter <= last]
        self.cells = cell_names({n: np.shape(t.values[n]) for n in book.values})
        self.fixed: dict[Cell, Decimal | None] = {}
        for step in self.steps:
            for idx in np.ndindex(step.shape):
                value = self._fixed(step, idx)
                if value is not False:
                    self.fixed[(step.name, idx)] = value

    # --- entries set without arithmetic -------------------------------------------------
    def _zero(self, cell: Cell) -> bool:
        return self.fixed.get(cell, 1) == 0

    def _fixed(self, step: Step, idx: Index) -> Decimal | bool | None:
        """The value an entry has whatever the arithmetic (UNNEEDED for one never used),
        or False for an entry that is computed."""
        above = len(idx) == 2 and idx[1] > idx[0]
        if isinstance(step, Contraction):
            if above and step.desc.causal == "unneeded":
                return UNNEEDED
            if above and step.desc.causal == "zero":
                return ZERO
            live = self.terms(step, idx)
            bias = self._bias_cell(step, idx)
            return ZERO if not live and (bias is None or self._zero(bias)) else False
        if isinstance(step, Elementwise):
            return self._fixed_elementwise(step, idx)
        if isinstance(step, RowWise):
            if step.kind == "softmax":
                return ZERO if self.fixed.get((step.operands[0], idx)) == NEG_INF else False
            row = self._row(step, idx)
            zero = step.kind in ("mean", "sum") and all(self._zero(c) for c in row)
            return ZERO if zero else False
        if isinstance(step, Gather):
            sources = self.resolve((step.name, idx))
            if not sources or all(self._zero(c) for c in sources):
                return ZERO
            return False
        raise TypeError(step)

    def _fixed_elementwise(self, step: Elementwise, idx: Index) -> Decimal | bool:
        masked = step.consts.get("masked")
        if masked is not None and masked[idx]:
            return NEG_INF if step.formula.name == "scale_mask" else ZERO
        consts = step.constants(idx)
        if consts.get("weight", 1) == 0:
            return ZERO  # the last position predicts nothing
        if step.formula.name == "probs_backward" and consts["target"] == 0:
            return ZERO
        inputs = list(step.raw_inputs(self.cells, idx))
        first = self.resolve(inputs[0])
        name = step.formula.name
        if name in ZERO_WITH_FIRST and first and all(self._zero(c) for c in first):
            return ZERO
        every = [c for x in inputs for c in self.resolve(x)]
        if name in ZERO_WITH_ALL and every and all(self._zero(c) for c in every):
            return ZERO
        return False

    # --- what an entry reads ------------------------------------------------------------
    def resolve(self, cell: Cell) -> list[Cell]:
        """The computed entries (or parameters) a cell stands for: a lookup, slice,
        concatenation or copy is the entry it copies; a scatter of several, all of them."""
        step = self.t.producer(cell[0])
        if is_copy(step):
            return self.resolve(step.raw_inputs(self.cells, cell[1])[0])
        if not isinstance(step, Gather):
            return [cell]
        return [c for src in step.sources(self.cells, cell[1]) for c in self.resolve(src)]

    def _bias_cell(self, step: Contraction, idx: Index) -> Cell | None:
        return None if step.bias is None else (step.bias, tuple(idx[-1:]))

    def _row(self, step: RowWise, idx: Index) -> list[Cell]:
        row = list(step.row(self.cells, idx))
        if step.kind == "mean_loss":
            row = row[: step.count]
        return [c for x in row for c in self.resolve(x)]

    def terms(self, step: Contraction, idx: Index) -> list[tuple[Cell, Cell | None]]:
        """The products of a sum that are not zero by the mask or by construction, as
        (left entry, right entry); a Jacobian's right factors are its given entries (None;
        one that is 0 makes no product), a column sum's are ones (None)."""
        if step.kind == "jacobian":
            left = list(self.cells[step.operands[0]][idx[0]])
            given = self.book.jacobians[step.name][idx[0]][:, idx[1]]
            # a Jacobian entry that is 0 (a masked weight's row) makes no product
            left = [c for c, j in zip(left, given, strict=True) if j != 0]
            right: list[Cell | None] = [None] * len(left)
        elif step.kind == "colsum":
            left = list(self.cells[step.operands[0]][:, idx[0]])
            right = [None] * len(left)
        else:
            a, b = step.factors(self.cells, idx)
            left, right = list(a), list(b)
        out = []
        for a_cell, b_cell in zip(left, right, strict=True):
            factors = [c for x in (a_cell, b_cell) if x is not None for c in self.resolve(x)]
            if not any(self._zero(c) for c in factors):
                out.append((a_cell, b_cell))
        return out

    def reads(self, step: Step, idx: Index) -> list[Cell]:
        """The entries (computed ones and parameters) one computed entry is worked from, in
        the order its formula uses them; entries fixed by the mask or by construction are
        left out (a product with a masked weight is no product)."""
        if isinstance(step, Contraction):
            raw = [c for pair in self.terms(step, idx) for c in pair if c is not None]
            bias = self._bias_cell(step, idx)
            raw += [bias] if bias is not None else []
        elif isinstance(step, Elementwise):
            raw = list(step.raw_inputs(self.cells, idx))
        elif isinstance(step, RowWise):
            raw = self._row(step, idx) + [self.cells[n][idx[:1]] for n in step.operands[1:]]
        else:
            raw = [(step.name, idx)]
        out = [c for x in raw for c in self.resolve(x) if c not in self.fixed]
        return list(dict.fromkeys(out))

    # --- what an entry costs -----------------------------------------------------------
    def cost(self, step: Step, idx: Index) -> Cost:
        """The arithmetic of one computed entry (of a softmax row, its share); what a card
        writes and copies is counted per card (`work`)."""
        if isinstance(step, Contraction):
            n = len(self.terms(step, idx))
            if step.kind == "colsum":
                return Cost(additions=max(n - 1, 0))
            return Cost(products=n, additions=int(step.bias is not None))
        if isinstance(step, Elementwise):
            p, f, a = FORMULA_COST[step.formula.name]
            if step.formula.name == "sum":
                a = len(step.operands) - 1
            if step.formula.name == "normalize" and idx[-1] == 0:
                f, a = f + 1, a + 1  # σ̃ = √(σ² + ε), once per row
            return Cost(p, f, a)
        if isinstance(step, RowWise):
            n = len(self._row(step, idx))
            if step.kind == "softmax":  # per weight: s_j − max, its exp, into the sum, / sum
                return Cost(1, 1, 2)
            if step.kind == "var":
                return Cost(n + 1, 0, 2 * n - 1)
            if step.kind in ("mean", "mean_loss"):
                return Cost(1, 0, n - 1)
            return Cost(0, 0, n - 1)
        if isinstance(step, Gather):  # a scatter of several rows: their sum
            return Cost(additions=len(self.resolve((step.name, idx))) - 1)
        raise TypeError(step)

    def needed(self, sinks: list[Cell]) -> set[Cell]:
        """The computed entries that `sinks` depend on (themselves included). A softmax
        row is worked whole: one of its weights needs every exponential of the row anyway."""
        out: set[Cell] = set()
        stack = list(sinks)
        while stack:
            cell = stack.pop()
            step = self.t.producer(cell[0])
            if cell in out or cell in self.fixed or step is None:
                continue
            if isinstance(step, Gather) or is_copy(step):
                if cell[1] in self.computed(step):
                    out.add(cell)
                stack += self.resolve(cell)
                continue
            out.add(cell)
            if isinstance(step, RowWise) and step.kind == "softmax":
                stack += [(step.name, (cell[1][0], j)) for j in range(step.shape[1])]
            stack += self.reads(step, cell[1])
        return out

    def computed(self, step: Step) -> list[Index]:
        """The entries of a step that a card works out: not fixed, and not a copy."""
        if is_copy(step):
            return []
        if isinstance(step, Gather):
            return [
                idx
                for idx in np.ndindex(step.shape)
                if (step.name, idx) not in self.fixed and len(self.resolve((step.name, idx))) > 1
            ]
        return [idx for idx in np.ndindex(step.shape) if (step.name, idx) not in self.fixed]


# --- cutting into jobs --------------------------------------------------------------------
SPLIT_SECONDS = 360.0  # a longer row of independent entries is cut into chunks of columns
CHAIN_SECONDS = 540.0  # a step joins the card that makes its inputs while it stays this short
PACK_SECONDS = 240.0  # small cards of one kind and depth share a card up to this long


@dataclass(eq=False)
class Job:
    """One card's work: its entries in the order they are computed, its depth in the data
    flow (1: it reads only parameters and given values) and every entry it reads from
    outside itself (parameters and given values included), in order of use."""

    level: int
    entries: list[Cell]
    reads: list[Cell]
    columns: list[object] = field(default_factory=list)  # per entry, what a split keeps together

    @property
    def splittable(self) -> bool:
        return None not in self.columns

    def steps(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self.entries))


@dataclass
class Cut:
    """The jobs, the job that computes each entry, and the hand work of each."""

    flow: Flow
    steps: list[Step]  # the selected steps
    jobs: list[Job]
    maker: dict[Cell, Job]
    readers: dict[Cell, list[Cell]] = field(default_factory=dict)  # entries that read each

    def inputs(self, job: Job) -> list[Cell]:
        """Entries the job copies from other cards."""
        return [c for c in job.reads if c in self.maker]

    def printed(self, job: Job) -> list[Cell]:
        """Entries printed on the card: parameters, and values no card computes."""
        return [c for c in job.reads if c not in self.maker]

    def cost(self, job: Job) -> Cost:
        """The job's hand work, every value it writes counted once."""
        return work(self.flow, job, self.maker)

    def seconds(self, job: Job) -> float:
        return seconds(self.flow, job, self.maker)


def work(flow: Flow, job: Job, maker: dict[Cell, Job]) -> Cost:
    total = Cost()
    for name, idx in job.entries:
        total = total + flow.cost(flow.t.step(name), idx)
    copies = sum(1 for c in job.reads if c in maker and maker[c] is not job)
    return replace(total, writes=len(boxes(flow.book, job)), copies=copies)


def seconds(flow: Flow, job: Job, maker: dict[Cell, Job]) -> float:
    cost = work(flow, job, maker)
    return PACE.seconds(cost, boxes=cost.writes)


def boxes(book: Book, job: Job) -> list[tuple[Cell, str]]:
    """Every value a card has its student write, in order: per entry its values on the
    way (a softmax row's maximum, exponentials and sum, a LayerNorm row's σ̃: once per row),
    then the entry itself, whose part is ""."""
    out: list[tuple[Cell, str]] = []
    seen: set[tuple[Cell, str]] = set()
    for name, idx in job.entries:
        parts = book.parts.get(name, {})
        at = idx if idx in parts else idx[:1]  # a softmax writes its values per row
        for key in parts.get(at, {}):
            where = (name, idx[:1]) if at != idx or key in PER_ROW_PARTS else (name, idx)
            if (where, key) not in seen:
                seen.add((where, key))
                out.append((where, key))
        out.append(((name, idx), ""))
    return out


Work = list[tuple[Step, list[Index]]]  # the entries to compute, step by step


def work_of(flow: Flow, steps: list[Step], sinks: list[Cell] | None = None) -> Work:
    """The entries the cards compute: every computed entry of these steps, or with
    `sinks`, only those the sinks depend on."""
    wanted = flow.needed(sinks) if sinks is not None else None
    out = []
    for step in steps:
        idxs = [i for i in flow.computed(step) if wanted is None or (step.name, i) in wanted]
        if idxs:
            out.append((step, idxs))
    return out


def _rows(step: Step, entries: list[Index]) -> list[list[Index]]:
    """A step's entries as the rows a card takes whole or cuts: a matrix's rows; a vector
    of column sums as one row; a vector of per-row values, entry by entry."""
    if isinstance(step, Contraction) and len(step.shape) == 1:
        return [entries] if entries else []
    rows: dict[int, list[Index]] = {}
    for idx in entries:
        rows.setdefault(idx[0] if idx else 0, []).append(idx)
    return list(rows.values())


def _merge(job: Job, entries: list[Cell], reads: list[Cell], columns: list[object]) -> None:
    job.entries += entries
    job.columns += columns
    inside = set(job.entries)
    job.reads = list(dict.fromkeys(c for c in job.reads + reads if c not in inside))


def _columns(job: Job, step: Step, flow: Flow, idxs: list[Index]) -> list[object]:
    """For each new entry of `job`, the column it goes with when the job is cut: its own
    for the job's first step; for an epilogue, that of the entries it reads in the job
    (None, which forbids cutting, when they lie in several)."""
    if not job.entries:
        if isinstance(step, RowWise):
            return [None] * len(idxs)
        return [idx[-1] if idx else 0 for idx in idxs]
    where = dict(zip(job.entries, job.columns, strict=True))
    out = []
    for idx in idxs:
        cols = {where[c] for c in flow.reads(step, idx) if c in where}
        out.append(cols.pop() if len(cols) == 1 else None)
    return out


def cut(flow: Flow, todo: Work) -> Cut:
    """The entries to compute as jobs (see the module's docstring)."""
    readers: dict[Cell, list[Cell]] = {}
    for step, idxs in todo:
        for idx in idxs:
            for c in flow.reads(step, idx):
                readers.setdefault(c, []).append((step.name, idx))
    jobs: list[Job] = []
    maker: dict[Cell, Job] = {}

    def fits(job: Job, limit: float) -> bool:
        return seconds(flow, job, maker) <= limit

    for step, todo_idxs in todo:
        for idxs in _rows(step, todo_idxs):
            entries = [(step.name, idx) for idx in idxs]
            reads = list(dict.fromkeys(c for idx in idxs for c in flow.reads(step, idx)))
            made = list(dict.fromkeys(maker[c] for c in reads if c in maker))
            level = 1 + max((j.level for j in made), default=0)
            deepest = [j for j in made if j.level == level - 1]
            target = _fuse(step, entries, reads, deepest, readers)
            # an epilogue of independent entries may make a long row: cutting it comes later
            later = isinstance(step, Elementwise | Gather) and target is not None
            if target is not None and not (later and target.splittable):
                trial = Job(target.level, list(target.entries), list(target.reads))
                trial.columns = list(target.columns)
                _merge(trial, entries, reads, [None] * len(entries))
                if not fits(trial, CHAIN_SECONDS):
                    target = None
            if target is None:
                target = Job(level, [], [])
                jobs.append(target)
            elif isinstance(step, RowWise) and step.kind == "softmax":
                target.columns = [None] * len(target.columns)
            _merge(target, entries, reads, _columns(target, step, flow, idxs))
            for c in entries:
                maker[c] = target
    jobs = [part for job in jobs for part in _split(flow, job, maker)]
    maker = {c: job for job in jobs for c in job.entries}
    jobs = _pack(flow, jobs, maker)
    maker = {c: job for job in jobs for c in job.entries}
    return Cut(flow, [step for step, _ in todo], jobs, maker, readers)


def _fuse(
    step: Step,
    entries: list[Cell],
    reads: list[Cell],
    deepest: list[Job],
    readers: dict[Cell, list[Cell]],
) -> Job | None:
    """The job a new row joins, if any: an element-wise step the one job that makes its
    deepest inputs (GELU after the hidden layer, a scaling after its dot products); a row
    reduction the job it adds no input to (a variance after its mean); a softmax row the
    job that makes its scores, when nothing else reads them."""
    if len(deepest) != 1:
        return None
    (job,) = deepest
    if isinstance(step, Elementwise | Gather):
        return job
    if isinstance(step, RowWise) and step.kind != "softmax":
        known = set(job.entries) | set(job.reads)
        return job if all(c in known for c in reads) else None
    if isinstance(step, RowWise):
        mine = set(entries) | set(job.entries)
        alone = all(r in mine for c in job.entries for r in readers.get(c, []))
        return job if alone else None
    return None


def _split(flow: Flow, job: Job, maker: dict[Cell, Job]) -> list[Job]:
    """A job too long for one card, of independent entries, as chunks of its columns as
    wide as fit SPLIT_SECONDS (as even as they come)."""
    if not job.splittable or seconds(flow, job, maker) <= SPLIT_SECONDS:
        return [job]
    keys = list(dict.fromkeys(job.columns))
    for width in range(len(keys), 0, -1):
        blocks = even_blocks(len(keys), width)
        chunks = [_chunk(flow, job, [keys[k] for k in block]) for block in blocks]
        if width == 1 or all(seconds(flow, c, maker) <= SPLIT_SECONDS for c in chunks):
            return chunks
    raise AssertionError("unreachable")


def _chunk(flow: Flow, job: Job, keys: list[object]) -> Job:
    picked = [(c, k) for c, k in zip(job.entries, job.columns, strict=True) if k in keys]
    entries = [c for c, _ in picked]
    inside = set(entries)
    reads = [r for c in entries for r in flow.reads(flow.t.step(c[0]), c[1]) if r not in inside]
    return Job(job.level, entries, list(dict.fromkeys(reads)), [k for _, k in picked])


def _pack(flow: Flow, jobs: list[Job], maker: dict[Cell, Job]) -> list[Job]:
    """Small jobs of one kind (a step's role: the queries of either head) at one depth
    share a card, first fit by decreasing length, while it stays within PACK_SECONDS and
    no longer than the longest card at that depth (which sets the round's length)."""
    longest: dict[int, float] = {}
    for job in jobs:
        longest[job.level] = max(longest.get(job.level, 0.0), seconds(flow, job, maker))
    groups: dict[tuple[int, str], list[Job]] = {}
    for job in jobs:
        role = flow.t.step(job.entries[0][0]).desc.role
        groups.setdefault((job.level, role), []).append(job)
    out: dict[int, Job] = {}  # by the position of the first job packed into it
    order = {id(j): k for k, j in enumerate(jobs)}
    for (level, _), group in groups.items():
        limit = min(PACK_SECONDS, longest[level])
        cards: list[Job] = []
        for job in sorted(group, key=lambda j: -seconds(flow, j, maker)):
            for card in cards:
                trial = Job(level, list(card.entries), list(card.reads), list(card.columns))
                _merge(trial, job.entries, job.reads, job.columns)
                if seconds(flow, trial, maker) <= limit:
                    _merge(card, job.entries, job.reads, job.columns)
                    break
            else:
                cards.append(Job(level, list(job.entries), list(job.reads), list(job.columns)))
        for card in cards:
            first = min(order[id(maker[c])] for c in card.entries)
            out[first] = card
    return [out[k] for k in sorted(out)]
