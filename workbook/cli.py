"""The `workbook` command: summary, export, build, handouts, exercises, grade and relay.

Every user error ends in one line on stderr and exit code 2; TeX missing is 3, a LaTeX
failure 4. No traceback reaches the user for anything we can name.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import signal
import sys
import textwrap
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from . import __version__, engine, export, params, planning
from .build import ORDER, PAGE_LIMIT, BuildRequest, TooLargeError, build
from .classfolder import load as load_class
from .compile import FolderBusyError, TexFailedError, TexMissingError
from .config import (
    HELP,
    KEYS,
    MODELS,
    PRESETS,
    Config,
    ConfigError,
    load,
    preset,
    read_toml,
    whole_number,
)
from .grade import FOLLOW_THROUGH_CHOICES, GradeRequest, grade, handout_request
from .grading import ROUNDING_CREDIT
from .handouts import HandoutRequest, handouts
from .landing import OutputBlockedError
from .printed import ARITHMETICS, DIGITS, UnprintableError
from .relay import PER_PAGE, POSTERS, SCOPES, STUDENTS, RelayRequest, relay
from .render import DETAILS, GIVENS, LAYOUTS, PAPERS, SCAFFOLDS, Options
from .render.base import FONT_SIZES, LARGE_PRINT
from .texrun import StoppedError, interrupt, stop_all


class UsageError(Exception):
    """Bad command-line use; exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not argparse's usage block
        if message.startswith("unrecognized arguments"):
            flags = _all_flags(self)
            for word in message.split(":", 1)[1].split():
                name = word.split("=")[0]
                owners = _commands_with(self, name)
                if owners:  # right flag, wrong command
                    message += f" ({name} is an option of {' and '.join(owners)})"
                    break
                close = difflib.get_close_matches(name, flags, n=1)
                if close:
                    message += f" (did you mean {close[0]}?)"
                    break
        raise UsageError(f"{self.prog}: {message}")


def _commands_with(p: argparse.ArgumentParser, flag: str) -> list[str]:
    """The subcommands that take `flag`."""
    return [
        name
        for a in p._actions
        if isinstance(a, argparse._SubParsersAction)
        for name, sub in a.choices.items()
        if flag in _all_flags(sub)
    ]


def _all_flags(p: argparse.ArgumentParser) -> list[str]:
    flags = [o for a in p._actions for o in a.option_strings]
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            flags += [f for sub in a.choices.values() for f in _all_flags(sub)]
    return flags


METAVARS = {
    "preset": "{" + ",".join(PRESETS) + "}",
    "model": "{" + ",".join(MODELS) + "}",
    "vocab": "WORDS",
    "sentence": "TEXT",
}


def _config_flags(p: argparse.ArgumentParser, preset_name: str = "") -> None:
    """The model's flags; a command whose models start from a preset shows its values."""
    g = p.add_argument_group("model and optimiser (override the config file)")
    g.add_argument("--config", type=Path, metavar="FILE", help="TOML file with any of the keys")
    base = preset(preset_name) if preset_name else Config()
    for key in KEYS:
        default = getattr(base, key)
        shown = ",".join(default) if key == "vocab" else (default or "none")
        if key == "preset" and preset_name:
            shown += "; --preset '' for the seed's model"
        g.add_argument(
            f"--{key.replace('_', '-')}",
            dest=key,
            metavar=METAVARS.get(key, "N" if isinstance(default, int) else "X"),
            help=f"{HELP[key]} (default: {shown})".replace("%", "%%"),
        )


# Two or three examples at the end of each command's --help (tests/test_docs.py parses them).
EXAMPLES = {
    "summary": [
        "workbook summary",
        "workbook summary --model gpt2 --layers 2",
        "workbook summary --preset classroom --seed 7",
    ],
    "export": [
        "workbook export --output step.json",
        "workbook export --format csv --output step-csv",
        "workbook export --format npz --output step.npz --preset classroom",
    ],
    "build": [
        "workbook build",
        "workbook build --preset classroom --paper letter --output class-book",
        "workbook build --only exercises,answers --chapters 2-3 --scaffold none",
    ],
    "handouts": [
        "workbook handouts --preset classroom --roster class.csv --sections 2.1-2.2,3 -o lesson",
        "workbook handouts --preset classroom --roster class.csv --chapters 2 --minutes 50",
        "workbook handouts --key-for 00XQ-C5EF --class lesson",
    ],
    "exercises": [
        "workbook exercises --preset classroom",
        "workbook exercises --preset classroom --sections 2.1-2.2,3",
    ],
    "grade": [
        "workbook grade --class lesson --answers typed.csv",
        "workbook grade --class lesson --answers typed.csv --follow-through half --csv-only",
    ],
    "relay": [
        "workbook relay --students 30 -o relay",
        "workbook relay --roster class.csv --scope step --paper letter -o relay",
        "workbook relay --students 12 --chapters 2-3 --cards-per-page 2",
    ],
}


def _command(sub: argparse._SubParsersAction, name: str, help: str) -> argparse.ArgumentParser:
    """A subcommand whose --help says what it does and ends with examples."""
    return sub.add_parser(
        name,
        help=help,
        description=textwrap.fill(help[0].upper() + help[1:] + ".", 78),
        epilog="examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[name]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="workbook",
        description="One training step of a tiny transformer, "
        "computed exactly and laid out for pencil and calculator.",
    )
    p.add_argument("--version", action="version", version=f"workbook {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = _command(sub, "summary", help="architecture, parameter counts, loss, largest gradient")
    _config_flags(s)

    e = _command(sub, "export", help="every number of the step as JSON, NPZ or CSV")
    e.add_argument(
        "--format",
        choices=sorted(export.EXPORTERS),
        default="json",
        help="json: one object of named arrays; npz: NumPy's archive of them; csv: one file "
        "per matrix in a folder (default: json)",
    )
    e.add_argument(
        "--output",
        "-o",
        default="-",
        metavar="FILE",
        help="a file for json and npz ('-' = standard output), a folder for csv (default: -)",
    )
    _config_flags(e)

    b = _command(sub, "build", help="the workbook as LaTeX and PDF")
    b.add_argument(
        "--detail",
        choices=DETAILS,
        default="full",
        help="full: every element of every product; sample: the first row of each; "
        "results: matrices only (default: full)",
    )
    b.add_argument(
        "--arithmetic",
        choices=ARITHMETICS,
        default="hand",
        help="hand = every printed value is computed from printed values, so each line "
        "re-checks on a calculator; exact = the float64 values, rounded only for print "
        "(default: hand)",
    )
    b.add_argument(
        "--only",
        type=_documents,
        default=ORDER,
        metavar="DOCS",
        help="comma-separated subset of workbook,exercises,answers (default: all)",
    )
    b.add_argument(
        "--givens",
        choices=GIVENS,
        default="chapter",
        help="exercises: chapter = every chapter prints its inputs; start = only the "
        "first, later ones point to your earlier exercises (default: chapter)",
    )
    b.add_argument(
        "--scaffold",
        choices=SCAFFOLDS,
        default="worked-first",
        help="exercises: worked-first = first element of each product worked; faded = "
        "worked in the first product, started in the second, then none; half = every other "
        "row given; none (default: worked-first)",
    )
    b.add_argument(
        "--no-figures",
        dest="figures",
        action="store_false",
        help="leave out the figures: chapter maps, Falk schemes of products, heat maps of "
        "attention weights, probabilities and weight gradients, GELU's curves, softmax bars",
    )
    b.add_argument("--tex-only", action="store_true", help="write the .tex, do not compile")
    b.add_argument(
        "--yes",
        action="store_true",
        help=f"build even above {PAGE_LIMIT:,} pages (the estimate is said before TeX starts)",
    )
    _document_flags(b, "build")
    _config_flags(b)

    h = _command(
        sub,
        "handouts",
        help="a class list → a personalised handout per student, one print file, a key and "
        "a grade sheet",
    )
    h.add_argument(
        "--roster",
        type=Path,
        metavar="FILE.csv",
        help="the class: UTF-8 CSV with columns id,name, one row per student",
    )
    h.add_argument(
        "--class-seed",
        type=_class_seed,
        default=0,
        metavar="N",
        help="draws every student's variant: a whole number from 0 to 2**63 - 1 (default: 0)",
    )
    h.add_argument(
        "--key-for",
        metavar="CODE",
        help="only the key of the variant with this code (from a student's page); "
        "with --class DIR, the settings are the class's",
    )
    h.add_argument(
        "--minutes",
        type=_positive,
        metavar="M",
        help="the lesson's length: say when the selection takes longer by hand (at the rates "
        "`workbook exercises` states)",
    )
    h.add_argument(
        "--class",
        dest="class_dir",
        type=Path,
        metavar="DIR",
        help="with --key-for: the folder the class's handouts were written to; its "
        "class.toml holds their settings, so no other setting is given",
    )
    _document_flags(h, "handouts")
    _config_flags(h)

    x = _command(
        sub,
        "exercises",
        help="every exercise's number and title, what it asks and about how long it takes by "
        "hand, to choose a handout's --sections",
    )
    which = x.add_mutually_exclusive_group()
    which.add_argument(
        "--chapters", type=_chapters, metavar="LIST", help="only these chapters, e.g. 2-5 or 3,11"
    )
    which.add_argument(
        "--sections",
        type=_sections,
        metavar="LIST",
        help="only these exercises, e.g. 3.1-3.3,8.2 (default: every exercise)",
    )
    _config_flags(x)

    g = _command(
        sub,
        "grade",
        help="a class's typed answers → scores, a graded sheet, a gradebook, feedback per "
        "student and a class report",
    )
    g.add_argument(
        "--class",
        dest="class_dir",
        type=Path,
        required=True,
        metavar="DIR",
        help="the folder `workbook handouts` wrote (class.toml, variants.csv)",
    )
    g.add_argument(
        "--answers",
        type=Path,
        required=True,
        metavar="FILE.csv",
        help="the typed answers: answers.csv filled in, or the shape of grades.csv; "
        "commas or semicolons, a decimal comma and a Unicode minus are read as meant",
    )
    g.add_argument(
        "--output",
        "-o",
        type=_folder,
        default=None,
        metavar="DIR",
        help="where the results go (default: DIR/graded of the class)",
    )
    g.add_argument(
        "--follow-through",
        choices=FOLLOW_THROUGH_CHOICES,
        default="full",
        help="credit for a value that is right from the student's own wrong earlier "
        "answers: a full point, half, or none (default: full)",
    )
    g.add_argument(
        "--rounding-credit",
        type=_fraction,
        default=ROUNDING_CREDIT,
        metavar="F",
        help="points, 0 to 1, for a slip of rounding alone (truncated, fewer digits, every "
        "product rounded, earlier values kept unrounded): the method right, a last digit off "
        f"(default: {ROUNDING_CREDIT:g}); any other named mistake earns nothing",
    )
    g.add_argument(
        "--strict",
        action="store_true",
        help="stop (exit 2) if any row of the answers cannot be graded, instead of listing "
        "it in problems.csv",
    )
    g.add_argument(
        "--csv-only",
        dest="pdf",
        action="store_false",
        help="write the CSV files only: no feedback PDFs and no report (no TeX needed)",
    )
    g.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    _relay_parser(sub)
    return p


def _relay_parser(sub: argparse._SubParsersAction) -> None:
    r = _command(
        sub,
        "relay",
        help="the class is the GPU: one step cut into cards a class computes together, "
        "round by round, with a poster and the teacher's plan",
    )
    who = r.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--students",
        type=_students,
        metavar="N",
        help=f"how many students, {STUDENTS[0]}-{STUDENTS[-1]}; with more students than "
        "cards, the plan pairs those without a card with those who have some",
    )
    who.add_argument(
        "--roster",
        type=Path,
        metavar="FILE.csv",
        help="the students by name instead: UTF-8 CSV with columns id,name "
        f"({STUDENTS[0]}-{STUDENTS[-1]} of them); the cards and the plan print the names",
    )
    what = r.add_mutually_exclusive_group()
    what.add_argument(
        "--scope",
        choices=SCOPES,
        default="forward",
        help="forward = the forward pass, embeddings to loss; step = the forward and "
        "backward passes, every parameter's gradient; only the entries these depend on are "
        "computed (default: forward)",
    )
    _selection_flags(
        what,
        "every entry of these chapters' steps instead of a scope, e.g. 3 or 2-4 "
        "(default: the scope)",
    )
    _output_flags(r, "relay")
    r.add_argument(
        "--cards-per-page",
        dest="per_page",
        type=int,
        choices=PER_PAGE,
        default=None,
        help="cards to a page, cut apart along the marks (default: 4 when every card fits "
        "a quarter page, else 2)",
    )
    r.add_argument(
        "--poster",
        choices=POSTERS,
        default="large",
        help="large = each poster page on one A3 sheet (tabloid with --paper letter); "
        "tiled = each on two sheets of the paper, to trim and join (default: large)",
    )
    r.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    _config_flags(r, "classroom")
    r.set_defaults(default_preset="classroom")


def _output_flags(p: argparse.ArgumentParser, output: str) -> None:
    """Where the files go, how many digits they print, on which paper."""
    p.add_argument(
        "--output",
        "-o",
        type=_folder,
        default=Path(output),
        metavar="DIR",
        help=f"the folder the PDFs and their .tex go to (default: {output})",
    )
    p.add_argument(
        "--digits",
        type=_digits,
        default=4,
        metavar="N",
        help=f"significant digits of every printed number, {DIGITS[0]}-{DIGITS[-1]} (default: 4)",
    )
    p.add_argument(
        "--paper", choices=PAPERS, default="a4", help="paper size of every PDF (default: a4)"
    )


def _selection_flags(which: argparse._MutuallyExclusiveGroup, chapters: str) -> None:
    """--chapters or --sections, into a group of choices that exclude each other."""
    which.add_argument("--chapters", type=_chapters, default=None, metavar="LIST", help=chapters)
    which.add_argument(
        "--sections",
        type=_sections,
        default=None,
        metavar="LIST",
        help="exercises by their numbers, e.g. 3.1-3.3,8.2 (a bare number is a whole "
        "chapter; numbers stay the book's)",
    )


def _document_flags(p: argparse.ArgumentParser, output: str) -> None:
    """What build and handouts share: where, how many digits, which paper, which chapters
    or exercises, the print's size and layout, and whether to say how it goes."""
    _output_flags(p, output)
    p.add_argument(
        "--font-size",
        type=_font_size,
        default=None,
        metavar="PT",
        help=f"size of the text in print, {FONT_SIZES[0]}-{FONT_SIZES[-1]} pt: the pages are "
        "magnified whole, tables and figures with the text (default: 10)",
    )
    p.add_argument(
        "--large-print",
        action="store_true",
        help=f"large print: {LARGE_PRINT} pt (or --font-size), sans-serif letters and digits",
    )
    p.add_argument(
        "--layout",
        choices=LAYOUTS,
        default="falk",
        help="exercises: falk = a product's grid sits between its factors, the left one to "
        "the left and the right one above; grid = the grid alone (default: falk)",
    )
    _selection_flags(
        p.add_mutually_exclusive_group(),
        "chapters of the exercises and answer key, e.g. 2-5 or 3,11 (default: all; "
        "the seed model has 13)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    p.add_argument(
        "--force",
        action="store_true",
        help="compile every document afresh, even those the output folder has up to date",
    )


def _documents(text: str) -> tuple[str, ...]:
    names = [w.strip() for w in text.split(",") if w.strip()]
    unknown = [w for w in names if w not in ORDER]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"{unknown[0] if unknown else text!r}: choose from {', '.join(ORDER)}"
        )
    return tuple(n for n in ORDER if n in names)


def _chapters(text: str) -> str:
    """The form of a chapter list (numbers and ranges); the build checks the numbers
    against the model's chapters."""
    if not re.fullmatch(r"\s*[0-9]+(\s*-\s*[0-9]+)?(\s*,\s*[0-9]+(\s*-\s*[0-9]+)?)*\s*", text):
        raise argparse.ArgumentTypeError(f"{text!r}: use numbers and ranges, e.g. 2-5,11")
    return re.sub(r"\s+", "", text)


def _sections(text: str) -> str:
    """The form of an exercise list ("3.1-3.3,8.2,5"); the build checks the numbers."""
    one = r"\s*[0-9]+(\.[0-9]+)?\s*"
    if not re.fullmatch(rf"{one}(-{one})?(,{one}(-{one})?)*", text):
        raise argparse.ArgumentTypeError(
            f"{text!r}: use exercise numbers and ranges, e.g. 3.1-3.3,8.2"
        )
    return re.sub(r"\s+", "", text)


def _folder(text: str) -> Path:
    """An output folder: not empty (that would write into the current folder unasked), not
    '-' (documents are files, not a stream), no control characters."""
    if not text:
        raise argparse.ArgumentTypeError("is empty; give a folder")
    if text == "-":
        raise argparse.ArgumentTypeError("'-' is not a folder: these are files, give --output DIR")
    bad = next((ch for ch in text if ord(ch) < 0x20 or ord(ch) == 0x7F), None)
    if bad is not None:
        raise argparse.ArgumentTypeError(f"{text!r} has the control character U+{ord(bad):04X}")
    return Path(text)


def _positive(text: str) -> float:
    if not re.fullmatch(r"[0-9]+(\.[0-9]+)?", text.strip()) or float(text) <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give minutes as a positive number")
    return float(text)


def _font_size(text: str) -> int:
    n = _whole(text)
    if n not in FONT_SIZES:
        raise argparse.ArgumentTypeError(f"{n} is outside {FONT_SIZES[0]}-{FONT_SIZES[-1]}")
    return n


def print_size(args: argparse.Namespace) -> dict[str, object]:
    """--font-size and --large-print as options: large print is 16 pt unless sized, sans."""
    size = args.font_size or (LARGE_PRINT if args.large_print else 10)
    return {"font_size": size, "sans": args.large_print}


def _fraction(text: str) -> float:
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= x <= 1:
        raise argparse.ArgumentTypeError(f"{text} is outside 0-1")
    return x


def _whole(text: str) -> int:
    try:
        return whole_number(text, repr(text))
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _class_seed(text: str) -> int:
    n = _whole(text)
    if not 0 <= n < 2**63:
        raise argparse.ArgumentTypeError(f"{n} is outside 0 to 2**63 - 1")
    return n


def _students(text: str) -> int:
    n = _whole(text)
    if n not in STUDENTS:
        raise argparse.ArgumentTypeError(f"{n} is outside {STUDENTS[0]}-{STUDENTS[-1]}")
    return n


def _digits(text: str) -> int:
    n = _whole(text)
    if n not in DIGITS:
        raise argparse.ArgumentTypeError(f"{n} is outside {DIGITS[0]}-{DIGITS[-1]}")
    return n


def config_from_args(args: argparse.Namespace) -> Config:
    """The model: defaults (a command's default preset: relay's is the classroom model,
    unless --preset or the config file names one), the config file, then flags."""
    overrides = {k: getattr(args, k) for k in KEYS if getattr(args, k, None) is not None}
    default = getattr(args, "default_preset", "")
    if default and "preset" not in overrides:
        named = args.config is not None and "preset" in read_toml(args.config)
        if not named:
            overrides["preset"] = default
    return load(args.config, overrides)


ARCHITECTURES = {
    "seed": "the seed's block: attention, FFN, residual, then LayerNorm",
    "gpt2": "GPT-2 pre-LN blocks: x + attention(LN1(x)), then + FFN(LN2(.)); a final LayerNorm",
}


def summary_text(c: Config) -> str:
    t = engine.run(c)
    engine.check_numbers(c, t)
    counts = params.count(c)
    grads = {n: abs(t[f"d.{n}"]).max() for n in counts}
    top = max(grads, key=grads.get)
    width = max(len(n) for n in counts)
    blocks = f"{c.layers} block{'s' if c.layers > 1 else ''}"
    lines = [
        f"Architecture: decoder-only transformer, {blocks} ({ARCHITECTURES[c.model]})",
        f"  vocabulary {c.vocab_size} ({', '.join(c.vocab)})",
        f"  sentence {c.sentence!r} -> tokens {list(c.tokens)} (T = {c.T})",
        f"  d_model {c.d_model}, heads {c.heads} (d_k = d_v = {c.d_k}), d_ff {c.d_ff}, "
        f"max_len {c.max_len}",
        f"Parameters ({len(counts)} tensors):",
        *(f"  {n:<{width}} {'x'.join(map(str, t[n].shape)):>7} {k:>6,}" for n, k in counts.items()),
        f"  {'total':<{width + 8}} {sum(counts.values()):>6,}",
        f"Loss: {float(t.loss.result):.6f}",
        f"Largest gradient: |dL/d{top}| = {grads[top]:.6g}",
    ]
    return "\n".join(lines)


def _attach_negative_values(argv: list[str]) -> list[str]:
    """`--lr -1e-3` → `--lr=-1e-3`: argparse takes "-1e-3" for a flag, and the value must
    reach the config check, which names it."""
    flags = {f"--{k.replace('_', '-')}" for k in KEYS}
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in flags and re.fullmatch(r"-[\d.].*", arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    argv = _attach_negative_values(list(sys.argv[1:] if argv is None else argv))
    args = None
    try:
        args = build_parser().parse_args(argv)
        c = config_from_args(args) if hasattr(args, "config") else None
        writes_stdout = args.command == "summary" or (
            args.command == "export" and args.output == "-"
        )
        if writes_stdout and sys.stdout is None:  # started with fd 1 closed (>&-)
            raise UsageError(f"workbook {args.command}: standard output is closed")
        if args.command == "summary":
            print(summary_text(c))
        elif args.command == "export":
            if not args.output:
                raise UsageError("workbook export: --output is empty; give a file, a folder or -")
            trace = engine.run(c)
            engine.check_numbers(c, trace)
            export.EXPORTERS[args.format](c, trace, args.output)
        elif args.command == "build":
            opts = Options(
                detail=args.detail,
                digits=args.digits,
                arithmetic=args.arithmetic,
                paper=args.paper,
                figures=args.figures,
                givens=args.givens,
                scaffold=args.scaffold,
                layout=args.layout,
                **print_size(args),
            )
            req = BuildRequest(
                args.output,
                opts,
                chapters=args.chapters,
                sections=args.sections,
                only=args.only,
                tex_only=args.tex_only,
                quiet=args.quiet,
                yes=args.yes,
                force=args.force,
            )
            build(c, req)
        elif args.command == "exercises":
            print(planning.table(planning.items(c, args.chapters, args.sections)))
        elif args.command == "grade":
            grade(
                GradeRequest(
                    args.class_dir,
                    args.answers,
                    args.output,
                    args.follow_through,
                    args.strict,
                    args.pdf,
                    args.quiet,
                    args.rounding_credit,
                )
            )
        elif args.command == "relay":
            relay(
                c,
                RelayRequest(
                    args.output,
                    students=args.students,
                    roster=args.roster,
                    scope=args.scope,
                    chapters=args.chapters,
                    sections=args.sections,
                    digits=args.digits,
                    paper=args.paper,
                    per_page=args.per_page,
                    poster=args.poster,
                    quiet=args.quiet,
                ),
            )
        elif args.command == "handouts" and args.class_dir is not None:
            handouts(*class_key_request(args, argv))
        elif args.command == "handouts":
            hreq = HandoutRequest(
                args.output,
                # a later chapter points to the student's own earlier answers, never prints them
                Options(
                    digits=args.digits,
                    paper=args.paper,
                    scaffold="faded",
                    givens="start",
                    layout=args.layout,
                    **print_size(args),
                ),
                roster=args.roster,
                chapters=args.chapters,
                sections=args.sections,
                class_seed=args.class_seed,
                key_for=args.key_for,
                quiet=args.quiet,
                force=args.force,
                minutes=args.minutes,
            )
            handouts(c, hreq)
        return 0
    except TexMissingError as exc:
        print(f"workbook: {exc}", file=sys.stderr)
        return 3
    except TexFailedError as exc:
        print(f"workbook: {exc}", file=sys.stderr)
        return 4
    except (
        UsageError,
        ConfigError,
        UnprintableError,
        TooLargeError,
        FolderBusyError,
        OutputBlockedError,
    ) as exc:
        line = str(exc) if isinstance(exc, UsageError) else f"workbook: {exc}"
        print(cut_values(line), file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as SIGPIPE would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 141
    except OSError as exc:  # a full disk, a folder one may not write in: what, and where
        where = exc.filename or getattr(args, "output", None) or "."
        print(cut_values(f"workbook: {where}: {exc.strerror or exc}"), file=sys.stderr)
        return 5
    except (KeyboardInterrupt, StoppedError):
        print("workbook: interrupted", file=sys.stderr)
        return 130


# What --class DIR carries: given with it, each would contradict the class's settings.
CLASS_CARRIES = {f"--{k.replace('_', '-')}" for k in KEYS} | {
    "--config",
    "--roster",
    "--sections",
    "--chapters",
    "--class-seed",
    "--digits",
    "--paper",
    "--layout",
    "--font-size",
    "--large-print",
}


def class_key_request(args: argparse.Namespace, argv: list[str]) -> tuple[Config, HandoutRequest]:
    """handouts --key-for CODE --class DIR: the class folder's settings, and nothing else."""
    if args.key_for is None:
        raise UsageError(
            "workbook handouts: --class goes with --key-for CODE (handouts write class.toml)"
        )
    given = sorted({a.split("=")[0] for a in argv} & CLASS_CARRIES)
    if given:
        raise UsageError(
            f"workbook handouts: {given[0]} with --class: the class folder holds the settings"
        )
    s = load_class(args.class_dir)
    req = handout_request(s, args.class_dir, args.quiet)
    return s.config, replace(req, output=args.output, key_for=args.key_for)


def cut_values(line: str, most: int = 80) -> str:
    """An error line with each long value it quotes cut to `most` characters and an
    ellipsis: a 900 kB sentence is named, not repeated. A path stays whole: a file is
    found by its whole name."""

    def cut(m: re.Match[str]) -> str:
        text = m.group(0)
        quote = text[0] if text[0] in "'\"" else ""
        if quote and is_path(text[1:-1]):
            return text
        return text[: most - 1] + "…" + quote

    long = rf"'[^'\n]{{{most},}}'|\"[^\"\n]{{{most},}}\"|[0-9]{{{most},}}"
    return re.sub(long, cut, line)


def is_path(text: str) -> bool:
    """Does this name a file in a folder that exists (a path the user gave)?"""
    if "/" not in text or len(text) > 4096:
        return False
    try:
        return Path(text).parent.is_dir()
    except (OSError, ValueError):
        return False


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM, SIGINT or SIGHUP (a closed terminal): stop TeX at once (it runs in process
    groups of its own, which a Ctrl-C to the terminal does not reach), then unwind like
    Ctrl-C: private folders are removed on the way and nothing is moved into place."""
    stop_all()
    interrupt()


def entry() -> NoReturn:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):  # a closed terminal too
        signal.signal(sig, _terminate)
    sys.exit(main())
