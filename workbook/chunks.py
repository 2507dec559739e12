"""A big document compiled as two chunks side by side, on two cores, then joined into the PDF
a single pass makes: the same pages, page labels, links, named destinations and bookmarks.

The source splits at a chapter, where a page break is anyway. Each chunk is the whole
preamble with part of the body. The chunks run pdflatex pass by pass in lockstep and, between
passes, read what the others wrote: the labels of all others (\\ref, \\pageref), the later
chunks' table-of-contents lines (the contents are in the first chunk), and the counters at
the end of the chunk before (page, chapter, hyperref's anchor numbers), so numbering carries
on. They stop when no chunk's inputs changed since its last pass, latexmk's rule.

pdfTeX gives a link to a destination of another chunk a stand-in destination (its log names
each); the join keeps every chunk's own destinations and drops the stand-ins, so each link
reaches the page a single pass would give it.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import logging
import re
import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from threading import Event

from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    ByteStringObject,
    DictionaryObject,
    IndirectObject,
    NameObject,
    NumberObject,
    PdfObject,
    TextStringObject,
)

from .texrun import run_tex

MAX_ROUNDS = 8  # latexmk gives up after 5 passes; chunks need about one round more

LABELS, LATER_TOC, COUNTERS = "wb-others.lab", "wb-later.toc", "wb-counters.tex"

# Read by every chunk, before \begin{document}: the other chunks' labels, and the table of
# contents continued by the later chunks' lines (an absent file is an empty one).
PREAMBLE = rf"""\makeatletter
\InputIfFileExists{{{LABELS}}}{{}}{{}}
\let\wb@starttoc\@starttoc
\def\@starttoc#1{{\wb@starttoc{{#1}}\begingroup\makeatletter\InputIfFileExists{{wb-later.#1}}{{}}{{}}\endgroup}}
\makeatother
"""

# At the end of a chunk that another follows: every LaTeX counter, and hyperref's number
# for unnumbered anchors, as they are where the next chunk begins.
SAVE_COUNTERS = r"""\clearpage
\makeatletter
\newwrite\wb@out\immediate\openout\wb@out=\jobname.cnt
\def\@elt#1{\immediate\write\wb@out{\string\setcounter{#1}{\the\csname c@#1\endcsname}}}
\cl@@ckpt
\immediate\write\wb@out{\string\global\string\Hy@linkcounter=\the\Hy@linkcounter\relax}
\immediate\closeout\wb@out
\makeatother
"""

LOAD_COUNTERS = rf"""\makeatletter\InputIfFileExists{{{COUNTERS}}}{{}}{{}}\makeatother
"""

STAND_IN = re.compile(r"name\{([^{}]*)\} has been referenced but does not exist")
NEWLABEL = re.compile(r"^\\newlabel\{.*$", re.M)
# the page fields of \newlabel and \contentsline in an .aux, and of the saved page counter
LABEL_PAGE = re.compile(r"^(\\newlabel\{[^{}]*\}\{\{[^{}]*\}\{)(\d+)(\})", re.M)
TOC_PAGE = re.compile(
    r"^(\\@writefile\{toc\}.*\}\{)(\d+)(\}\{[^{}]*\}\\protected@file@percent \}$)", re.M
)
COUNTER_PAGE = re.compile(r"^(\\setcounter\{page\}\{)(\d+)(\})$", re.M)
TOC_LINE = re.compile(r"^\\@writefile\{toc\}\{(.*)\}$", re.M)


class NotConvergedError(RuntimeError):
    """The chunks' cross references did not settle within MAX_ROUNDS passes."""


def chapter_starts(source: str) -> list[int]:
    """Where each chapter after the first begins in the source: at its \\setcounter{chapter}
    line, or at the part whose first chapter it is (a part's page goes with its chapter)."""
    marks = [m.start() for m in re.finditer(r"^\\setcounter\{chapter\}\{\d+\}%$", source, re.M)]
    starts = []
    for prev, here in itertools.pairwise(marks):
        part = source.rfind("\n\\setcounter{part}{", prev, here)
        starts.append(part + 1 if part >= 0 else here)
    return starts


def split(source: str, parts: int = 2) -> list[str]:
    """The source as `parts` chunk sources of about equal size (TeX's work goes with it),
    split at chapters; fewer when it has too few chapters, [] when it cannot be split."""
    begin = source.index("\\begin{document}")
    end = source.rindex("\\end{document}")
    starts = chapter_starts(source)
    cuts: list[int] = []
    for k in range(1, parts):
        target = begin + (end - begin) * k / parts
        best = min(starts, key=lambda s: abs(s - target), default=None)
        if best is not None and best not in cuts:
            cuts.append(best)
    if not cuts:
        return []
    head = source[:begin]
    bounds = [begin, *sorted(cuts), end]
    chunks = []
    for i, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        body = source[lo:hi] if i == 0 else "\\begin{document}%\n" + LOAD_COUNTERS + source[lo:hi]
        tail = SAVE_COUNTERS if i < len(bounds) - 2 else ""
        chunks.append(head + PREAMBLE + body + tail + "\\end{document}\n")
    return chunks


def label_lines(aux: bytes) -> bytes:
    """The \\newlabel lines of an .aux: what other documents and chunks read of it."""
    return "\n".join(NEWLABEL.findall(aux.decode(errors="replace"))).encode()


@dataclass
class Chunk:
    folder: Path
    read: bytes | None = None  # what its last pass read (own .aux and .toc, the exchange)
    start: int = 1  # the page number it began on in its last pass

    def rebase(self, start: int) -> None:
        """Move the page numbers of its .aux and counters to a new first page: a chunk's
        pages only shift when the chunks before it grow, so its next pass starts right."""
        shift = start - self.start
        self.start = start
        for suffix, pattern in ((".aux", LABEL_PAGE), (".aux", TOC_PAGE), (".cnt", COUNTER_PAGE)):
            path = self.folder / f"doc{suffix}"
            if path.is_file():
                text = path.read_text(errors="replace")
                moved = pattern.sub(lambda m: f"{m[1]}{int(m[2]) + shift}{m[3]}", text)
                path.write_text(moved)

    def file(self, suffix: str) -> bytes:
        path = self.folder / f"doc{suffix}"
        return path.read_bytes() if path.is_file() else b""

    def labels(self) -> bytes:
        return label_lines(self.file(".aux"))

    def toc(self) -> bytes:
        """Its table-of-contents lines, which LaTeX writes to the .aux (a chunk without
        \\tableofcontents makes no .toc file)."""
        lines = TOC_LINE.findall(self.file(".aux").decode(errors="replace"))
        return "".join(f"{line}%\n" for line in lines).encode()

    def inputs(self) -> bytes:
        given = [self.folder / n for n in (LABELS, LATER_TOC, COUNTERS)]
        files = [self.file(".aux"), self.file(".toc")]
        files += [path.read_bytes() if path.is_file() else b"" for path in given]
        return b"\0".join(files)


def exchange(chunks: list[Chunk]) -> None:
    """Give each chunk what the others wrote in their last passes."""
    for i, ch in enumerate(chunks):
        others = b"\n".join(c.labels() for j, c in enumerate(chunks) if j != i)
        (ch.folder / LABELS).write_bytes(others + b"\n")
        (ch.folder / LATER_TOC).write_bytes(b"".join(c.toc() for c in chunks[i + 1 :]))
        if i > 0:
            (ch.folder / COUNTERS).write_bytes(chunks[i - 1].file(".cnt"))


def run_passes(
    chunks: list[Chunk], tex_pass: Callable[[Chunk], None], spare: Event | None = None
) -> int:
    """Passes in lockstep until no chunk's inputs changed since its last pass; the number of
    rounds. `tex_pass(chunk)` runs one pdflatex pass and raises on an error. `spare` is set
    once a round passes some chunk by: its core is free for other work."""
    with ThreadPoolExecutor(max_workers=len(chunks)) as pool:
        for rounds in range(MAX_ROUNDS):
            for before, chunk in itertools.pairwise(chunks):
                start = COUNTER_PAGE.search(before.file(".cnt").decode(errors="replace"))
                if start is not None and int(start[2]) != chunk.start:
                    chunk.rebase(int(start[2]))
            exchange(chunks)
            todo = [c for c in chunks if c.inputs() != c.read]
            if not todo:
                return rounds
            if spare is not None and len(todo) < len(chunks):
                spare.set()
            for c in todo:
                c.read = c.inputs()
            list(pool.map(tex_pass, todo))
    raise NotConvergedError(f"the cross references did not settle in {MAX_ROUNDS} passes")


def pdflatex_pass(
    chunk: Chunk, env: dict[str, str], priority: int = 0
) -> subprocess.CompletedProcess[str]:
    cmd = ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", "doc.tex"]
    return run_tex(cmd, chunk.folder, env, priority)


# --- the joined aux file ------------------------------------------------------------------
def merge_aux(auxes: list[str], pages: int) -> str:
    """One .aux for the whole document: the first chunk's, then each later chunk's without
    the lines it begins with as the first does (hyperref's set-up), and the total page count
    as LaTeX's last line."""
    last = re.compile(r"^\\gdef \\@abspage@last\{\d+\}$")
    first = auxes[0].splitlines()
    out = []
    for i, aux in enumerate(auxes):
        lines = aux.splitlines()
        common = 0
        while i and common < min(len(lines), len(first)) and lines[common] == first[common]:
            common += 1
        out += [line for line in lines[common:] if not last.match(line)]
    return "\n".join([*out, f"\\gdef \\@abspage@last{{{pages}}}"]) + "\n"


# --- the joined PDF -------------------------------------------------------------------------
def stand_ins(log: str) -> set[str]:
    """Destinations pdfTeX made up for links to another chunk (its log names each)."""
    return set(STAND_IN.findall(log.replace("\n", "")))


def name_tree(node: PdfObject) -> dict[str, PdfObject]:
    """Name → value of a PDF name tree (/Names leaves, /Kids inner nodes)."""
    node = node.get_object()
    out: dict[str, PdfObject] = {}
    names = node.get("/Names", [])
    for i in range(0, len(names), 2):
        out[str(names[i])] = names[i + 1]
    for kid in node.get("/Kids", []):
        out |= name_tree(kid)
    return out


@dataclass
class Bookmark:
    title: PdfObject
    extra: DictionaryObject  # /A (a GoTo to a named destination), colour, style
    closed: bool
    level: int
    children: list[Bookmark]


# hyperref's anchors name their sectioning level; the bookmark package nests by it
LEVELS = {"part": -1, "chapter": 0, "section": 1, "subsection": 2, "subsubsection": 3}


def level(item: DictionaryObject) -> int:
    action = item.get("/A")
    dest = str(action.get_object().get("/D", "")) if action is not None else ""
    return LEVELS.get(dest.split(".")[0].rstrip("*"), 0)


def flat_outline(reader: PdfReader) -> list[Bookmark]:
    """A PDF's bookmarks in document order, each with its sectioning level."""
    out: list[Bookmark] = []
    root = reader.trailer["/Root"].get("/Outlines")

    def walk(node: PdfObject | None) -> None:
        while node is not None:
            item = node.get_object()
            keep = {k: v for k, v in item.items() if k not in OUTLINE_LINKS}
            closed = int(item.get("/Count", 0)) < 0
            out.append(Bookmark(item["/Title"], DictionaryObject(keep), closed, level(item), []))
            walk(item.get("/First"))
            node = item.get("/Next")

    if root is not None:
        walk(root.get_object().get("/First"))
    return out


OUTLINE_LINKS = {"/Title", "/Parent", "/Prev", "/Next", "/First", "/Last", "/Count"}


def nest(flat: list[Bookmark]) -> list[Bookmark]:
    """Bookmarks as a tree: each under the nearest earlier one of a lower level."""
    top: list[Bookmark] = []
    stack: list[Bookmark] = []
    for b in flat:
        while stack and stack[-1].level >= b.level:
            stack.pop()
        (stack[-1].children if stack else top).append(b)
        stack.append(b)
    return top


def write_outline(writer: PdfWriter, items: list[Bookmark], parent: DictionaryObject) -> int:
    """Write bookmarks under `parent`; the number of entries visible when it is open."""
    refs = []
    for b in items:
        entries = {**b.extra, NameObject("/Title"): b.title}
        node = DictionaryObject({k: v.clone(writer) for k, v in entries.items()})
        node[NameObject("/Parent")] = parent.indirect_reference
        refs.append(add(writer, node))
    visible = len(items)
    for i, (b, ref) in enumerate(zip(items, refs, strict=True)):
        node = ref.get_object()
        if i:
            node[NameObject("/Prev")] = refs[i - 1]
        if i + 1 < len(refs):
            node[NameObject("/Next")] = refs[i + 1]
        if b.children:
            below = write_outline(writer, b.children, node)
            node[NameObject("/Count")] = NumberObject(-below if b.closed else below)
            visible += 0 if b.closed else below
    if refs:
        parent[NameObject("/First")], parent[NameObject("/Last")] = refs[0], refs[-1]
    return visible


def page_labels(readers: list[PdfReader]) -> ArrayObject:
    """/PageLabels /Nums of the joined document: each chunk's ranges at its page offset,
    a chunk's first range dropped when it only carries on the numbering before it."""
    nums = ArrayObject()
    offset, style, next_number = 0, None, None
    for r in readers:
        labels = r.trailer["/Root"].get("/PageLabels")
        entries = labels.get_object()["/Nums"] if labels is not None else [0, {"/S": "/D"}]
        for k in range(0, len(entries), 2):
            at, spec = int(entries[k]) + offset, entries[k + 1].get_object()
            start = int(spec.get("/St", 1))
            key = (spec.get("/S"), spec.get("/P"))
            carries_on = (key, start) == (style, next_number) and k == 0
            if not carries_on:
                nums += [NumberObject(at), DictionaryObject(spec)]
            style = key
            next_number = start + (
                (int(entries[k + 2]) if k + 2 < len(entries) else len(r.pages)) - int(entries[k])
            )
        offset += len(r.pages)
    return nums


Pages = dict[tuple[int, int], PdfObject]  # (chunk, its page's object number) → joined page


def join(pdfs: list[Path], logs: list[str], out: Path) -> int:
    """Join the chunks' PDFs into `out` as one document; its page count."""
    readers = [PdfReader(p) for p in pdfs]
    writer = PdfWriter()
    pages: Pages = {}
    for i, r in enumerate(readers):
        for page in r.pages:  # cloned with its link annotations, named GoTo actions
            pages[i, page.indirect_reference.idnum] = writer.add_page(page).indirect_reference
    dests = destinations(writer, readers, logs, pages)
    names = ArrayObject()
    for name in sorted(dests, key=lambda n: n.encode()):
        names += [TextStringObject(name), dests[name]]
    first = readers[0].trailer["/Root"]
    root = writer.root_object
    root[NameObject("/Names")] = DictionaryObject(
        {NameObject("/Dests"): add(writer, DictionaryObject({NameObject("/Names"): names}))}
    )
    root[NameObject("/PageLabels")] = DictionaryObject({NameObject("/Nums"): page_labels(readers)})
    for key in ("/PageMode", "/OpenAction"):
        if key in first:
            root[NameObject(key)] = relocate(writer, first[key], 0, pages)
    outline = DictionaryObject({NameObject("/Type"): NameObject("/Outlines")})
    root[NameObject("/Outlines")] = add(writer, outline)
    count = write_outline(writer, nest([b for r in readers for b in flat_outline(r)]), outline)
    outline[NameObject("/Count")] = NumberObject(count)
    if readers[0].metadata is not None:
        writer.add_metadata(dict(readers[0].metadata))
    # The same chunks give the same bytes (SOURCE_DATE_EPOCH fixes the chunks' own): the file
    # identifier is theirs hashed, not pypdf's random one (set only through its attribute).
    ident = hashlib.md5(b"".join(p.read_bytes() for p in pdfs)).digest()
    writer._ID = ArrayObject([ByteStringObject(ident), ByteStringObject(ident)])
    with out.open("wb") as f:
        writer.write(f)
    return len(writer.pages)


def destinations(
    writer: PdfWriter, readers: list[PdfReader], logs: list[str], pages: Pages
) -> dict[str, PdfObject]:
    """The joined document's named destinations: each chunk's own, none of pdfTeX's
    stand-ins for another chunk's (a name no chunk has keeps its stand-in, as in one pass)."""
    dests: dict[str, PdfObject] = {}
    missing: dict[str, tuple[int, PdfObject]] = {}
    for i, (r, log) in enumerate(zip(readers, logs, strict=True)):
        fake = stand_ins(log)
        tree = r.trailer["/Root"].get("/Names", {}).get("/Dests")
        for name, value in (name_tree(tree) if tree is not None else {}).items():
            if name in fake:
                missing.setdefault(name, (i, value))
            elif name not in dests:  # hyperref's Doc-Start, in every chunk: the first's
                dests[name] = relocate(writer, value, i, pages)
    for name, (i, value) in missing.items():
        if name not in dests:
            dests[name] = relocate(writer, value, i, pages)
    return dests


def relocate(writer: PdfWriter, value: PdfObject, chunk: int, pages: Pages) -> PdfObject:
    """A destination (array, or dictionary with /D) or action of chunk `chunk`, copied into
    the writer with its page reference pointing at the joined document's page."""
    obj = value.get_object()
    if isinstance(obj, DictionaryObject):
        copy: PdfObject = DictionaryObject(
            {
                k: relocate(writer, v, chunk, pages) if k == "/D" else v.clone(writer)
                for k, v in obj.items()
            }
        )
    elif isinstance(obj, ArrayObject) and obj and isinstance(obj[0], IndirectObject):
        copy = ArrayObject([pages[chunk, obj[0].idnum], *obj[1:]])
    else:
        return obj.clone(writer)
    return add(writer, copy)


def add(writer: PdfWriter, obj: PdfObject) -> IndirectObject:
    """`obj` as a new object of the writer (pypdf has no public name for this)."""
    return writer._add_object(obj)


def cut_pages(pdf: Path, ranges: list[tuple[int, int]]) -> list[bytes]:
    """Pages first to last (1-based, both included) of `pdf`, for each range, as PDFs of
    their own; the same pages give the same bytes."""
    quiet = logging.getLogger("pypdf")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # ArabTeX's fonts repeat a key pypdf warns about
    try:
        data = pdf.read_bytes()
        reader = PdfReader(io.BytesIO(data))
        out = []
        for first, last in ranges:
            writer = PdfWriter()
            for page in reader.pages[first - 1 : last]:
                writer.add_page(page)
            if reader.metadata is not None:
                writer.add_metadata(dict(reader.metadata))
            ident = hashlib.md5(data + f"{first}-{last}".encode()).digest()
            writer._ID = ArrayObject([ByteStringObject(ident), ByteStringObject(ident)])
            buf = io.BytesIO()
            writer.write(buf)
            out.append(buf.getvalue())
        return out
    finally:
        quiet.setLevel(level)
