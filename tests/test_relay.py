"""Relay cards: the class computes one step together. Every card's results follow from what
the card itself shows (its printed numbers and the values it copies) by the rules and equal
the key; every input is made by exactly one card of an earlier round or printed; the cards
cover the selection exactly once; rounds are the data flow's depth; each round is shared as
evenly as whole cards allow; every self-check holds on the key and fails on a slip of one
unit in the last digit; for 1, 2, 7, 30, 60 and 200 students. Then the command: bad input,
the documents (no overfull box, no glyph collision, byte-identical reruns)."""

from __future__ import annotations

import csv
import io
import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from workbook import cli
from workbook.config import from_mapping, preset
from workbook.hand import Rounder, sig
from workbook.jobs import boxes, is_copy
from workbook.names import name_tex
from workbook.printed import element
from workbook.relay import Card, Lesson, RelayRequest, idle, lesson, plan_csv
from workbook.render.fmt import Fmt
from workbook.render.relay import CardText, Sheet, exact_text, plain_number
from workbook.schedule import spread
from workbook.trace import Contraction, Elementwise, Gather

SIZES = (1, 2, 7, 30, 60, 200)
SCOPES = ("forward", "step")


def make(students: int, scope: str = "forward", **kw) -> Lesson:
    return lesson(preset("classroom"), RelayRequest(Path("unused"), students, scope=scope, **kw))


@pytest.fixture(scope="module")
def lessons() -> dict[tuple[str, int], Lesson]:
    return {(scope, n): make(n, scope) for scope in SCOPES for n in SIZES}


@pytest.fixture(scope="module", params=[(s, n) for s in SCOPES for n in SIZES], ids=str)
def each(request, lessons) -> Lesson:
    return lessons[request.param]


# --- what a card shows, worked by the rules -----------------------------------------------
def replay(plan: Lesson, card: Card) -> dict[tuple, Decimal]:
    """Every value the card has its student write, worked from the card alone: the values
    it prints (parameters, given values, Jacobians), those it copies (as their makers wrote
    them: the key's), what the mask sets, and its own earlier values. Anything else is
    None, so arithmetic that needs it fails."""
    flow, book = plan.cut.flow, plan.book
    r = Rounder(book.digits)
    values = {n: np.full(np.shape(book.values[n]), None, dtype=object) for n in book.values}
    for name, idx in plan.cut.printed(card.job) + plan.cut.inputs(card.job):
        values[name][idx] = book.values[name][idx]
    for (name, idx), v in flow.fixed.items():
        if v is not None:
            values[name][idx] = v
    copies = [
        (step.name, idx, flow.resolve((step.name, idx)))
        for step in flow.steps
        if isinstance(step, Gather) or is_copy(step)
        for idx in np.ndindex(step.shape)
    ]

    def refresh() -> None:  # lookups, slices, copies: the entry they stand for
        for name, idx, src in copies:
            if len(src) == 1:
                values[name][idx] = values[src[0][0]][src[0][1]]

    out = {}
    for name, idx in card.job.entries:
        refresh()
        step = flow.t.step(name)
        if isinstance(step, Contraction):  # the products the card shows
            total = Decimal(0)
            for a, b in flow.terms(step, idx):
                if step.kind == "jacobian":
                    right = book.jacobians[name][idx[0]][a[1][1], idx[1]]
                else:
                    right = Decimal(1) if b is None else values[b[0]][b[1]]
                total += values[a[0]][a[1]] * right
            if step.bias is not None:
                total += values[step.bias][idx[-1:]]
            value, parts = r(total), {}
        else:
            value, parts = element(step, values, idx, r)
        values[name][idx] = value
        out[((name, idx), "")] = value
        for key, v in parts.items():  # a softmax's and a LayerNorm's, once per row
            per_row = not isinstance(step, Elementwise) or key == "sigma"
            out[((name, idx[:1] if per_row else idx), key)] = v
    return out


def test_every_cards_results_follow_from_the_card_and_equal_the_key(each: Lesson) -> None:
    plan = each
    for card in plan.cards:
        worked = replay(plan, card)
        for cell, part in boxes(plan.book, card.job):
            key = plan.written(cell, part)
            assert worked[(cell, part)] == key, (card.number, cell, part)
            if not part:
                assert key == sig(plan.book.values[cell[0]][cell[1]], plan.book.digits)


def test_every_input_is_made_by_one_earlier_card_or_printed(each: Lesson) -> None:
    plan = each
    makers: dict = {}
    for card in plan.cards:
        for cell in card.job.entries:
            assert cell not in makers, f"{cell} made by cards {makers[cell]} and {card.number}"
            makers[cell] = card.number
    by_number = {c.number: c for c in plan.cards}
    f = Fmt(plan.book.digits)
    for card in plan.cards[:: max(1, len(plan.cards) // 40)]:
        text = CardText(plan, card, f, False, Sheet("a4", 2).content[0]).tex()
        flow = plan.cut.flow
        reads = {
            c
            for name, idx in card.job.entries
            for c in flow.reads(flow.t.step(name), idx)
            if c not in card.job.entries
        }
        for cell in reads:
            if cell in makers:
                source = by_number[makers[cell]]
                assert source.round < card.round
                assert rf"\cp{{{source.number}}}" in text  # a box, and the card it comes from
            else:  # a parameter or a value no card computes: its number is on the card
                number = plain_number(plan.book.values[cell[0]][cell[1]], plan.book.digits)
                assert number in text, (card.number, cell)


def computed_entries(plan: Lesson) -> set:
    flow = plan.cut.flow
    return {(s.name, idx) for s in flow.steps for idx in flow.computed(s)}


def test_the_cards_cover_the_selection_exactly_once(lessons) -> None:
    for scope in SCOPES:
        plan = lessons[(scope, 30)]
        flow = plan.cut.flow
        entries = [c for card in plan.cards for c in card.job.entries]
        assert len(entries) == len(set(entries))
        covered = set(entries)
        # closed: what a card's entry reads is printed, fixed by the mask or made by a card
        for name, idx in entries:
            for cell in flow.reads(flow.t.step(name), idx):
                assert cell in covered or flow.t.producer(cell[0]) is None, (name, idx, cell)
        # fixed entries are what the key says they are
        for (name, idx), value in flow.fixed.items():
            if value is not None:
                assert plan.book.values[name][idx] == value
        # the sinks are there: the loss, and with `step` every parameter's gradient
        assert (flow.t.loss.name, ()) in covered
        left = computed_entries(plan) - covered
        T = plan.config.T
        if scope == "forward":
            forward = {
                s.name for s in flow.steps if flow.t.chapters[s.chapter - 1].part == "forward"
            }
            assert covered <= {c for c in computed_entries(plan) if c[0] in forward}
            # what no card computes belongs to the last position, which predicts nothing and
            # which no earlier position attends to
            assert left and all(idx[:1] == (T - 1,) for _, idx in left), sorted(left)[:5]
        else:
            for p in flow.t.params:
                grads = [(f"d.{p}", i) for i in np.ndindex(flow.t[p].shape)]
                made = [c for c in grads if c not in flow.fixed]
                assert all(c in covered or flow.resolve(c)[0] in covered for c in made), p


def test_a_selection_covers_every_entry_of_its_exercises() -> None:
    plan = make(7, sections="3.1-3.3")
    names = {"QK.0", "scores.0", "attn.0"}
    flow = plan.cut.flow
    want = {
        (n, idx) for n in names for idx in np.ndindex(flow.t[n].shape) if (n, idx) not in flow.fixed
    }
    got = [c for card in plan.cards for c in card.job.entries]
    assert sorted(got) == sorted(want) and len(got) == len(set(got))
    # their inputs, Q and K of head 1, are given: printed on the cards
    printed = {c[0] for card in plan.cards for c in plan.cut.printed(card.job)}
    assert {"Q.0", "K.0"} <= printed and plan.rounds == 1


def test_rounds_are_the_depth_of_the_data_flow_for_every_class_size(each: Lesson) -> None:
    plan = each
    depth: dict[int, int] = {}
    for card in sorted(plan.cards, key=lambda c: c.job.level):
        before = [depth[plan.maker(c).number] for c in plan.cut.inputs(card.job)]
        depth[card.number] = 1 + max(before, default=0)
        for c in plan.cut.inputs(card.job):
            assert plan.maker(c).round < card.round
    assert plan.rounds == max(depth.values())
    assert [c.round for c in plan.cards] == sorted(c.round for c in plan.cards)  # round order


def loads(plan: Lesson, r: int) -> list[list[float]]:
    """Each busy student's cards' hand times in round r (from 1)."""
    by: dict[int, list[float]] = {}
    for card in plan.cards:
        if card.round == r:
            by.setdefault(card.student, []).append(plan.seconds(card))
    return list(by.values())


def balanced_split_exists(times: list[float], students: int, length: float) -> bool:
    """Can these cards go to at most `students` students, none longer than `length`, every
    busy student within a quarter of their mean? Tried every way (equal loads being
    interchangeable), written apart from the scheduler's own search."""
    times = sorted(times, reverse=True)
    for k in range(1, min(students, len(times)) + 1):
        mean = sum(times) / k
        low, high = 0.75 * mean, min(1.25 * mean, length) + 1e-9
        loads = [0.0] * k

        def fill(n: int, loads: list[float] = loads, low: float = low, high: float = high) -> bool:
            if n == len(times):
                return min(loads) >= low - 1e-9
            tried = set()
            for b, x in enumerate(loads):
                if x not in tried and x + times[n] <= high:
                    tried.add(x)
                    loads[b] += times[n]
                    if fill(n + 1):
                        return True
                    loads[b] -= times[n]
            return False

        if fill(0):
            return True
    return False


def test_every_round_is_shared_within_a_quarter_where_the_cards_allow(each: Lesson) -> None:
    plan = each
    n = len(plan.students)
    for r in range(1, plan.rounds + 1):
        groups = loads(plan, r)
        load = [sum(g) for g in groups]
        if spread(load) <= 0.25:
            continue
        times = [t for g in groups for t in g]
        # not within a quarter: then no split of the same cards as short is
        assert not balanced_split_exists(times, n, max(load)), (r, groups)


def test_every_check_holds_on_the_key_and_fails_on_a_slip_of_one_unit(each: Lesson) -> None:
    plan = each
    for card in plan.cards:
        check = plan.check(card)
        written = [plan.written(cell, part) for cell, part in boxes(plan.book, card.job)]
        inputs = [plan.written(c, "") for c in check.inputs]
        assert check.holds(written, inputs), card.number
        for k, value in enumerate(written):
            if value == 0:
                continue
            unit = Decimal(1).scaleb(value.adjusted() - plan.book.digits + 1)
            for slip in (unit, -unit):
                wrong = list(written)
                wrong[k] = value + slip
                assert not check.holds(wrong, inputs), (card.number, k, slip)


def test_a_check_prints_no_result(lessons) -> None:
    plan = lessons[("forward", 30)]
    kinds = {plan.check(c).kind for c in plan.cards}
    assert kinds == {"total", "mean"}  # the loss is the one card with a single value
    for card in plan.cards:
        check = plan.check(card)
        if check.kind == "total":
            assert len(boxes(plan.book, card.job)) >= 2
        values = {plan.written(cell, part) for cell, part in boxes(plan.book, card.job)}
        assert check.target not in values or check.kind == "mean"


def test_classroom_forward_pass_in_figures(lessons) -> None:
    """The figures the README quotes: 78 cards in 11 rounds, the longest chain of cards,
    the lesson for 30 students."""
    plan = lessons[("forward", 30)]
    assert (len(plan.cards), plan.rounds) == (78, 11)
    path = plan.critical_path()
    assert [c.job.level for c in path] == list(range(1, 12))
    assert 50 <= plan.schedule.minutes() <= 70
    step = lessons[("step", 30)]
    assert step.rounds == 21 and len(step.cards) > 200


def test_more_students_than_cards_pairs_those_without_one(lessons) -> None:
    plan = lessons[("forward", 200)]
    spare = idle(plan)
    busy = {c.student for c in plan.cards}
    assert len(spare) == 200 - len(busy) > 0
    assert all(s not in busy and partner in busy for s, partner in spare.items())
    # with fewer students than cards, everyone has a card
    assert {c.student for c in lessons[("forward", 30)].cards} == set(range(1, 31))


def test_one_student_does_every_card_in_order(lessons) -> None:
    plan = lessons[("forward", 1)]
    assert {c.student for c in plan.cards} == {1}
    assert plan.rounds == 11


def test_the_plan_csv_lists_every_value_with_its_key(lessons) -> None:
    plan = lessons[("forward", 30)]
    rows = list(csv.DictReader(io.StringIO(plan_csv(plan, lambda s: "").decode())))
    assert len(rows) == sum(len(boxes(plan.book, c.job)) for c in plan.cards)
    loss = next(r for r in rows if r["quantity"] == "loss")
    assert Decimal(loss["key"]) == plan.written(("loss", ()), "")
    assert loss["to"] == "poster" and loss["card"] == str(plan.cards[-1].number)


# --- the command ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--students", "0"], "--students: 0 is outside 1-200"),
        (["--students", "201"], "--students: 201 is outside 1-200"),
        (["--students", "many"], "'many': must be a whole number"),
        ([], "one of the arguments --students --roster is required"),
        (["--students", "3", "--sections", "4.3"], "nothing to compute"),
        (["--students", "3", "--sections", "3.99"], "exercise 3.99"),
        (["--students", "3", "--scope", "step", "--chapters", "2"], "not allowed with"),
        (["--students", "3", "--cards-per-page", "3"], "invalid choice: 3"),
        (["--students", "3", "--d-model", "5"], "divisible by heads"),
    ],
)
def test_bad_input_gets_one_line_and_exit_2(tmp_path: Path, capsys, argv, message) -> None:
    code = cli.main(["relay", *argv, "-o", str(tmp_path / "out"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_roster_of_more_than_200_is_refused(tmp_path: Path, capsys) -> None:
    roster = tmp_path / "class.csv"
    roster.write_text("id,name\n" + "".join(f"s{k},Student {k}\n" for k in range(201)))
    code = cli.main(["relay", "--roster", str(roster), "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "201 students; a relay takes 1 to 200" in err and err.count("\n") == 1


def test_relay_defaults_to_the_classroom_model(tmp_path: Path) -> None:
    args = cli.build_parser().parse_args(["relay", "--students", "3"])
    assert cli.config_from_args(args) == preset("classroom")
    args = cli.build_parser().parse_args(["relay", "--students", "3", "--preset", ""])
    assert cli.config_from_args(args).d_model == 16
    toml = tmp_path / "m.toml"
    toml.write_text('preset = ""\nd_model = 8\n')
    args = cli.build_parser().parse_args(["relay", "--students", "3", "--config", str(toml)])
    assert cli.config_from_args(args).d_ff == 64  # the file's preset, the seed's model


def test_cards_print_names_through_name_tex(tmp_path: Path) -> None:
    roster = tmp_path / "class.csv"
    roster.write_text('id,name\na,"O\'Brien & {Zoë}"\nb,李雷\n', encoding="utf-8")
    plan = lesson(preset("classroom"), RelayRequest(Path("x"), roster=roster))
    text = CardText(plan, plan.cards[0], Fmt(4), True, 90.0).tex()
    assert r"O\textquotesingle{}Brien \& \{Zoë\}" in text
    assert name_tex("李雷") in CardText(plan, plan.of(2)[0], Fmt(4), True, 90.0).tex()


# --- the documents ------------------------------------------------------------------------
FILES = ["cards.pdf", "plan.csv", "plan.pdf", "poster.pdf"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default relay for 30 students, made twice."""
    out = tmp_path_factory.mktemp("relay")
    for run in ("a", "b"):
        assert cli.main(["relay", "--students", "30", "-o", str(out / run), "-q"]) == 0
    return out


@pytest.mark.tex
def test_the_relay_writes_its_files_the_same_bytes_each_time(built: Path) -> None:
    for run in ("a", "b"):
        assert sorted(p.name for p in (built / run).iterdir()) == FILES  # nothing left over
    for name in FILES:
        assert (built / "a" / name).read_bytes() == (built / "b" / name).read_bytes(), name


@pytest.mark.tex
def test_the_documents_say_what_the_lesson_needs(built: Path) -> None:
    from conftest import read_pdf_text

    plan = make(30)
    cards = read_pdf_text(built / "a" / "cards.pdf")
    assert cards.count("Round 1 of 11") == 3 and "Card 78" in cards
    total = exact_text(plan.check(plan.cards[0]).target).replace("{-}", "−")
    assert f"the total is exactly {total}" in " ".join(cards.split())
    poster = read_pdf_text(built / "a" / "poster.pdf")
    assert "One forward pass, computed by the class" in poster and "card 78" in poster
    text = " ".join(read_pdf_text(built / "a" / "plan.pdf").split())
    loss = plan_number(plan, ("loss", ()))
    assert f"L = {loss}" in text  # the key
    assert "78, in 11 rounds" in text and "critical path 11 cards" in text
    for n, rounds, minutes in plan_sizes(plan):
        assert f"{n} {rounds} {minutes}" in text  # what N buys


def plan_number(plan: Lesson, cell) -> str:
    return plain_number(plan.book.values[cell[0]][cell[1]], plan.book.digits).replace("{-}", "−")


def plan_sizes(plan: Lesson) -> list[tuple[int, int, str]]:
    from workbook.relay import what_n_buys

    return [(n, r, f"{m:.0f}") for n, r, m in what_n_buys(plan.cut)]


CASES = {
    "a4": {"students": 30},
    "letter, names, two a page, tiled": {
        "paper": "letter",
        "roster": True,
        "per_page": 2,
        "poster": "tiled",
    },
    "step": {"students": 60, "scope": "step"},
}


@pytest.fixture(scope="module", params=list(CASES))
def logs(request, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A relay's documents compiled as the command compiles them, with their logs."""
    from workbook.relay import Relay

    out = tmp_path_factory.mktemp("logs")
    kw = dict(CASES[request.param])
    if kw.pop("roster", False):
        roster = out / "class.csv"
        names = ["O'Brien & {Zoë} $5", "李雷", "محمد", r"\input{/etc/passwd}", "Ann", "Zoë"]
        roster.write_text("id,name\n" + "".join(f'{k},"{n}"\n' for k, n in enumerate(names)))
        kw["roster"] = roster
    req = RelayRequest(out, **kw)
    plan = lesson(preset("classroom"), req)
    relay = Relay(preset("classroom"), req)
    names = [s.name for s in plan.students if s.name]
    from workbook.names import pictures as name_pictures

    pictures = name_pictures(names, out, lambda m: None) if names else {}
    per_page = relay.cards(plan, out, pictures)
    relay.poster(plan, out)
    from workbook.render.relay import plan_source

    relay.compile(plan_source(plan, per_page, req.paper), out, "plan", pictures)
    text = {s: (out / f"{s}.log").read_text(errors="replace") for s in ("cards", "poster", "plan")}
    # the pages to look at glyph by glyph: every page, or for the backward pass's 200-odd
    # cards the first page with each kind of card (which quantities it computes)
    kinds: dict[tuple, int] = {}
    for card in plan.cards:
        kinds.setdefault(
            tuple(plan.cut.flow.t.step(n).desc.role for n in card.job.steps()),
            (card.number - 1) // per_page + 1,
        )
    pages = None if plan.scope == "forward" else sorted(set(kinds.values()))
    return out, text, pages


@pytest.mark.tex
def test_no_overfull_box_and_every_card_fits_its_slot(logs) -> None:
    _, text, _ = logs
    for name, log in text.items():
        assert "Overfull" not in log, name
        assert "too tall" not in log, name


@pytest.mark.tex
def test_no_glyph_collides_on_cards_poster_and_plan(logs) -> None:
    from glyphs import collisions

    out, _, pages = logs
    documents = {"cards": pages} if pages else {"cards": None, "poster": None, "plan": None}
    for name, only in documents.items():
        found = collisions(out / f"{name}.pdf", pages=only, processes=2)
        assert not found, (name, found[:3])


@pytest.mark.tex
def test_a_card_too_tall_for_a_quarter_takes_half_a_page(tmp_path: Path, capsys) -> None:
    """With d_ff 16 an entry of the FFN's projection sums 16 products: too tall for a
    quarter page, so the cards go two to a page; asked for four, the command says so in
    one line and writes nothing."""
    argv = ["relay", "--students", "4", "--d-ff", "16", "--sections", "5.3", "-q"]
    assert cli.main([*argv, "-o", str(tmp_path / "auto")]) == 0
    from pypdf import PdfReader

    pages = len(PdfReader(tmp_path / "auto" / "cards.pdf").pages)
    plan = lesson(
        from_mapping({"d_ff": 16}, preset("classroom")), RelayRequest(tmp_path, 4, sections="5.3")
    )
    cards = len(plan.cards)
    assert pages == math.ceil(cards / 2) and cards > 4
    code = cli.main([*argv, "--cards-per-page", "4", "-o", str(tmp_path / "four")])
    err = capsys.readouterr().err
    assert code == 2 and "does not fit a quarter of a page on a4 paper" in err
    assert err.count("\n") == 1 and not (tmp_path / "four" / "cards.pdf").exists()


@pytest.mark.parametrize(
    ("model", "selection"),
    [
        ({"model": "gpt2"}, {"scope": "step"}),
        ({"layers": 2}, {}),
        ({}, {"chapters": "13"}),
        ({}, {"digits": 3}),
    ],
    ids=["gpt2 step", "two layers", "AdamW", "3 digits"],
)
def test_other_models_and_selections_relay_the_key(model: dict, selection: dict) -> None:
    c = from_mapping(model, preset("classroom"))
    plan = lesson(c, RelayRequest(Path("unused"), 12, **selection))
    entries = [e for card in plan.cards for e in card.job.entries]
    assert len(entries) == len(set(entries))
    for card in plan.cards:
        worked = replay(plan, card)
        written = [plan.written(cell, part) for cell, part in boxes(plan.book, card.job)]
        assert [worked[b] for b in boxes(plan.book, card.job)] == written, card.number
        check = plan.check(card)
        assert check.holds(written, [plan.written(x, "") for x in check.inputs])
        for c_ in plan.cut.inputs(card.job):
            assert plan.maker(c_).round < card.round
