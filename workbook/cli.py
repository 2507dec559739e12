"""The `workbook` command: summary, export, build, handouts, grade and relay.

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
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from . import __version__, engine, export, params
from .build import ORDER, PAGE_LIMIT, BuildRequest, TooLargeError, build
from .classfolder import load as load_class
from .compile import FolderBusyError, TexFailedError, TexMissingError
from .config import KEYS, Config, ConfigError, load, preset, read_toml
from .grade import FOLLOW_THROUGH_CHOICES, GradeRequest, grade, handout_request
from .handouts import HandoutRequest, handouts
from .printed import ARITHMETICS, DIGITS, UnprintableError
from .relay import PER_PAGE, POSTERS, SCOPES, STUDENTS, RelayRequest, relay
from .render import DETAILS, GIVENS, LAYOUTS, PAPERS, SCAFFOLDS, Options
from .texrun import StoppedError, stop_all


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


def _config_flags(p: argparse.ArgumentParser, preset_name: str = "") -> None:
    """The model's flags; a command whose models start from a preset shows its values."""
    g = p.add_argument_group("model and optimiser (override the config file)")
    g.add_argument("--config", type=Path, metavar="FILE", help="TOML file with any of the keys")
    base = preset(preset_name) if preset_name else Config()
    for key in KEYS:
        default = getattr(base, key)
        shown = " ".join(default) if key == "vocab" else default
        g.add_argument(
            f"--{key.replace('_', '-')}", dest=key, metavar="VALUE", help=f"(default: {shown})"
        )


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="workbook",
        description="One training step of a tiny transformer, "
        "computed exactly and laid out for pencil and calculator.",
    )
    p.add_argument("--version", action="version", version=f"workbook {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("summary", help="architecture, parameter counts, loss, largest gradient")
    _config_flags(s)

    e = sub.add_parser("export", help="every number of the step as JSON, NPZ or CSV")
    e.add_argument("--format", choices=sorted(export.EXPORTERS), default="json")
    e.add_argument(
        "--output",
        "-o",
        default="-",
        metavar="FILE",
        help="file (json, npz; '-' for stdout) or folder (csv)",
    )
    _config_flags(e)

    b = sub.add_parser("build", help="the workbook as LaTeX and PDF")
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

    h = sub.add_parser(
        "handouts",
        help="a class list → a personalised handout per student, one print file, a key and "
        "a grade sheet",
    )
    h.add_argument("--roster", type=Path, metavar="FILE.csv", help="UTF-8 CSV with columns id,name")
    h.add_argument(
        "--class-seed",
        type=int,
        default=0,
        metavar="N",
        help="draws every student's variant (default: 0)",
    )
    h.add_argument(
        "--key-for",
        metavar="CODE",
        help="only the key of the variant with this code (from a student's page); "
        "with --class DIR, the settings are the class's",
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

    g = sub.add_parser(
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
    r = sub.add_parser(
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
    _selection_flags(what, "every entry of these chapters' steps instead of a scope, e.g. 3 or 2-4")
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
    _config_flags(r, "classroom")  # --preset '' for the seed's model
    r.set_defaults(default_preset="classroom")


def _output_flags(p: argparse.ArgumentParser, output: str) -> None:
    """Where the files go, how many digits they print, on which paper."""
    p.add_argument(
        "--output",
        "-o",
        type=_folder,
        default=Path(output),
        metavar="DIR",
        help=f"output folder (default: {output})",
    )
    p.add_argument(
        "--digits",
        type=_digits,
        default=4,
        metavar="N",
        help=f"significant digits of every printed number, {DIGITS[0]}-{DIGITS[-1]} (default: 4)",
    )
    p.add_argument("--paper", choices=PAPERS, default="a4", help="(default: a4)")


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
    or exercises, and whether to say how it goes."""
    _output_flags(p, output)
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
    if not re.fullmatch(r"\s*\d+(\s*-\s*\d+)?(\s*,\s*\d+(\s*-\s*\d+)?)*\s*", text):
        raise argparse.ArgumentTypeError(f"{text!r}: use numbers and ranges, e.g. 2-5,11")
    return re.sub(r"\s+", "", text)


def _sections(text: str) -> str:
    """The form of an exercise list ("3.1-3.3,8.2,5"); the build checks the numbers."""
    one = r"\s*\d+(\.\d+)?\s*"
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


def _whole(text: str, allowed: range) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if n not in allowed:
        raise argparse.ArgumentTypeError(f"{n} is outside {allowed[0]}-{allowed[-1]}")
    return n


def _students(text: str) -> int:
    return _whole(text, STUDENTS)


def _digits(text: str) -> int:
    return _whole(text, DIGITS)


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
            )
            build(c, req)
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
                ),
                roster=args.roster,
                chapters=args.chapters,
                sections=args.sections,
                class_seed=args.class_seed,
                key_for=args.key_for,
                quiet=args.quiet,
            )
            handouts(c, hreq)
        return 0
    except TexMissingError as exc:
        print(f"workbook: {exc}", file=sys.stderr)
        return 3
    except TexFailedError as exc:
        print(f"workbook: {exc}", file=sys.stderr)
        return 4
    except (UsageError, ConfigError, UnprintableError, TooLargeError, FolderBusyError) as exc:
        print(exc if isinstance(exc, UsageError) else f"workbook: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as SIGPIPE would
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit
        return 141
    except OSError as exc:
        print(f"workbook: {exc.filename or ''}: {exc.strerror}", file=sys.stderr)
        return 2
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


def _terminate(signum: int, frame: object) -> NoReturn:
    """SIGTERM or SIGINT: stop TeX at once (it runs in process groups of its own, which a
    Ctrl-C to the terminal does not reach), then unwind like Ctrl-C: private folders are
    removed on the way and nothing is moved into place."""
    stop_all()
    raise KeyboardInterrupt


def entry() -> NoReturn:
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    sys.exit(main())
