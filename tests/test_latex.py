"""LaTeX output: parsed back with SymPy's LaTeX parser and compared with the
formulas, and a standalone document compiled by a real TeX engine."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
import sympy
from sympy.parsing.latex import parse_latex

import paramsym
from cli_helpers import run

PROGRAM = "let C = 74\ninput(32x32x3) > conv3x3(->C, bias) > conv3x3(->2C, bias) > conv3x3(->4C, bias) > gap > " \
          "dense(->10, bias)"


def parse(text: str) -> sympy.Expr:
    return parse_latex(text, backend="lark")


def same(a: sympy.Expr, b: sympy.Expr) -> bool:
    """Equal as formulas, whatever the assumptions on the symbols."""
    # C_{in} as parsed and C_in as built are the same name
    plain = {s: sympy.Symbol(s.name.replace("{", "").replace("}", "")) for s in a.free_symbols | b.free_symbols}
    return sympy.simplify(a.xreplace(plain) - b.xreplace(plain)) == 0


def test_equation_parses_back_to_the_total():
    network = paramsym.parse(PROGRAM)
    text = paramsym.latex(network)
    equation = re.search(r"\\begin\{equation\}\s*(.*?)\s*\\end\{equation\}", text, re.S).group(1)
    _, formula, value = [part.strip() for part in equation.split("=")]
    assert same(parse(formula), network.params)
    assert int(value) == 498326


@pytest.mark.parametrize("program", [
    PROGRAM, "conv3x3(32->64, bias) > conv3x3(->128, groups=4)",
    "input(16x16x8) > dwconv3x3(->16, bias) > sepconv3x3(->8) > deconv4x4(->4, stride=2) > bn > prelu",
])
def test_derivation_rows_hold(program):
    network = paramsym.parse(program)
    text = paramsym.latex(network)
    rows = re.search(r"\\begin\{align\*\}\n(.*?)\n\\end\{align\*\}", text, re.S).group(1).split(" \\\\\n")
    assert len(rows) == len(paramsym.generic(network))
    for row, (path, template, values, count) in zip(rows, paramsym.generic(network)):
        _, textbook, right = [part.strip() for part in row.split("&")[0:1] + row.split("&&")[1].split("&=")]
        assert same(parse(textbook), template), row
        steps = [parse(step) for step in right.split(" = ")]
        for step in steps[:2]:
            assert same(step, count), row  # numbers substituted, then simplified
        if len(steps) == 3:
            assert int(steps[2]) == network.value(count)


def test_symbol_names_and_digit_grouping():
    out = run("latex", PROGRAM, "--symbol", r"C=C_{\mathrm{w}}", "--group-digits").stdout
    assert r"90 C_{\mathrm{w}}^{2} + 74 C_{\mathrm{w}} + 10 = 498{,}326" in out
    assert "498326" not in out


@pytest.mark.skipif(shutil.which("pdflatex") is None and not os.environ.get("PARAMSYM_REQUIRE_TEX"),
                    reason="no TeX engine here (CI installs texlive and sets PARAMSYM_REQUIRE_TEX)")
def test_standalone_document_compiles(tmp_path):
    tex = tmp_path / "net.tex"
    result = run("latex", "examples/resnet18_symbolic.psym", "--standalone", "--group-digits", "-o", str(tex))
    assert result.returncode == 0
    compiled = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert compiled.returncode == 0, compiled.stdout[-2000:]
    assert (tmp_path / "net.pdf").read_bytes().startswith(b"%PDF")
