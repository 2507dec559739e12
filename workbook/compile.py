"""TeX source → PDF with latexmk: no shell escape, no file access outside the build folder,
and the PDF replaced only when the new one is complete."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

TEX_PACKAGES = (
    "texlive-latex-base texlive-latex-recommended texlive-latex-extra "
    "texlive-fonts-recommended lmodern latexmk"
)


class TexMissingError(RuntimeError):
    """No TeX installation; exit code 3."""

    def __init__(self, tool: str) -> None:
        super().__init__(
            f"{tool} not found: install TeX Live with "
            f"`apt-get install --no-install-recommends {TEX_PACKAGES}` (or `make tex`)"
        )


class TexFailedError(RuntimeError):
    """LaTeX stopped with an error; exit code 4. The message holds the log's relevant lines."""


@dataclass(frozen=True)
class Compiled:
    pdf: Path
    log: Path
    pages: int
    overfull: int


def check_tex() -> None:
    for tool in ("latexmk", "pdflatex"):
        if shutil.which(tool) is None:
            raise TexMissingError(tool)


def error_excerpt(log: str, limit: int = 12) -> str:
    """The lines of a LaTeX log that say what went wrong and where."""
    lines = log.splitlines()
    out: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith("!"):
            out += [ln for ln in lines[i : i + 6] if ln.strip()]
            if len(out) >= limit:
                break
    return "\n".join(out[:limit]) or "\n".join(lines[-limit:])


def label_pages(aux: Path) -> dict[str, int]:
    """Page of every \\label in a compiled document, from its .aux file."""
    pages = {}
    for m in re.finditer(
        r"\\newlabel\{([^{}]*)\}\{\{[^{}]*\}\{(\d+)\}", aux.read_text(errors="replace")
    ):
        pages[m.group(1)] = int(m.group(2))
    return pages


def compile_pdf(tex: Path, pdf: Path) -> Compiled:
    """Compile `tex` in a private folder beside `pdf`; move the PDF and log into place.

    On any failure the previous `pdf` is left as it was.
    """
    check_tex()
    pdf.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=pdf.parent, prefix=f".{pdf.stem}-") as tmp:
        work = Path(tmp)
        shutil.copyfile(tex, work / "doc.tex")
        # kpathsea: "p" (paranoid) forbids reading or writing outside the working folder,
        # apart from TeX's own installed files; shell escape is off explicitly.
        env = os.environ | {"openout_any": "p", "openin_any": "p", "shell_escape": "f"}
        cmd = [
            "latexmk",
            "-pdf",
            "-interaction=nonstopmode",
            "-halt-on-error",
            "-no-shell-escape",
            "doc.tex",
        ]
        run = subprocess.run(
            cmd, cwd=work, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
        log_text = (
            (work / "doc.log").read_text(errors="replace")
            if (work / "doc.log").exists()
            else run.stdout + run.stderr
        )
        log = pdf.with_suffix(".log")
        log.write_text(log_text)
        if run.returncode != 0 or not (work / "doc.pdf").exists():
            raise TexFailedError(
                f"LaTeX failed on {tex.name} (full log: {log}):\n" + error_excerpt(log_text)
            )
        os.replace(work / "doc.pdf", pdf)
        if (work / "doc.aux").exists():  # page numbers of labels, for cross-document references
            os.replace(work / "doc.aux", pdf.with_suffix(".aux"))
    pages = re.search(r"Output written on .*?\((\d+) pages?", log_text)
    return Compiled(
        pdf, log, int(pages.group(1)) if pages else 0, log_text.count("Overfull \\hbox")
    )
