"""Names are keys, nothing more: no renderer reads meaning out of a step's name.

Every quantity of the default trace is renamed to an opaque id (q0, q1, …) and the three
documents are rendered again: apart from label keys and PDF bookmark text, which spell the
names, every page's source is the same. A renderer that split, matched or prefixed a name
would change, or fail.
"""

from __future__ import annotations

import ast
import re
from dataclasses import replace
from pathlib import Path

import pytest

from workbook.config import Config
from workbook.render import DOCUMENTS, Options
from workbook.trace import Contraction, Elementwise, Trace

RENDER = Path(__file__).resolve().parents[1] / "workbook" / "render"


def renamed(t: Trace) -> Trace:
    """The same trace with every parameter and result called q<k>."""
    new = {name: f"q{k}" for k, name in enumerate(t.values)}
    out = Trace(
        values={new[n]: v for n, v in t.values.items() if t.producer(n) is None},
        params={new[n]: replace(d, of=new.get(d.of, d.of)) for n, d in t.params.items()},
        chapters=list(t.chapters),
    )
    for s in t.steps:
        changes: dict[str, object] = {
            "name": new[s.name],
            "operands": tuple(new[n] for n in s.operands),
            "desc": replace(s.desc, of=new[s.desc.of] if s.desc.of else ""),
        }
        if isinstance(s, Contraction) and s.bias is not None:
            changes["bias"] = new[s.bias]
        if isinstance(s, Elementwise) and s.checks:
            changes["checks"] = new[s.checks]
        out.add(replace(s, **changes))
    return out


def normalized(tex: str) -> str:
    """Label keys and bookmark strings blanked: they spell names, and may."""
    tex = re.sub(r"\\(label|ref|pageref)\{[^{}]*\}", r"\\\1{}", tex)
    return re.sub(r"(\\texorpdfstring\{.*?\})\{[^{}]*\}", r"\1{}", tex)


@pytest.mark.parametrize("doc", sorted(DOCUMENTS))
def test_renaming_every_quantity_changes_no_page(trace, doc: str) -> None:
    opts = Options(detail="sample")
    before = DOCUMENTS[doc](Config(), trace, opts).tex()
    after = DOCUMENTS[doc](Config(), renamed(trace), opts).tex()
    assert "W_Q.0" in trace.values and "q0" not in trace.values
    assert normalized(before) == normalized(after)


STRING_METHODS = {
    "split",
    "rsplit",
    "partition",
    "rpartition",
    "startswith",
    "endswith",
    "removeprefix",
    "removesuffix",
    "replace",
    "find",
    "index",
}


def test_no_renderer_calls_a_string_method_on_a_name() -> None:
    """The static half: no `<x>.name.split(…)`, `name.startswith(…)`, re.match(…, name)."""
    found = []
    for path in sorted(RENDER.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in STRING_METHODS:
                target = ast.unparse(func.value)
                if target == "name" or target.endswith(".name") or target.startswith("name["):
                    found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
            if isinstance(func, ast.Attribute) and ast.unparse(func.value) == "re":
                args = [ast.unparse(a) for a in node.args]
                if any(a == "name" or a.endswith(".name") for a in args) and func.attr != "sub":
                    found.append(f"{path.name}:{node.lineno}: {ast.unparse(node)}")
    assert not found, found
