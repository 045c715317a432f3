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
from helpers.cli_helpers import run

PROGRAM = (
    "let C = 74\ninput(32x32x3) > conv3x3(->C, bias) > conv3x3(->2C, bias) > conv3x3(->4C, bias) > gap > "
    "dense(->10, bias)"
)


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


# Programs whose own symbols are named like the textbook's (C, C_in, C_out, k, k_h, k_w, g, N): the
# textbook symbols are primed (C', C'_{in}), so the derivation never reads "bn: 2 C = 2 C" for C' = C.
CLASHING = [
    "conv3x3(3->C) > bn",
    "let C = 16\nconv3x3(3->C, bias) > bn > ln",
    "conv3x3(C_in->C_out, bias) > conv3x3(->C, groups=g)",
    "input(8x8x3) > (conv3x3(->N, pad=1) > bn) * N",
    "input(8x8x4) > (conv1x1(->4, bias) > bn) * N",
    "conv1d(C->k, k=k, bias) > dense(->C_out)",
    "let C = 4; let D = 2C\ninput(8x8x3) > conv3x3(->C) > conv3x3(->D) > bn",
]


@pytest.mark.parametrize(
    "program",
    [
        PROGRAM,
        "conv3x3(32->64, bias) > conv3x3(->128, groups=4)",
        "input(16x16x8) > dwconv3x3(->16, bias) > sepconv3x3(->8) > deconv4x4(->4, stride=2) > bn > prelu",
        "input(32x768) > attn(heads=12, bias) > (posembed(64)) * 2",
        "input(T x d) > attn(heads=4, kv_heads=2) > posembed(P)",
        *CLASHING,
    ],
)
def test_derivation_rows_hold(program):
    network = paramsym.parse(program)
    text = paramsym.latex(network)
    rows = re.search(r"\\begin\{align\*\}\n(.*?)\n\\end\{align\*\}", text, re.S).group(1).split(" \\\\\n")
    assert len(rows) == len(paramsym.generic(network))
    for row, (_path, template, _values, count) in zip(rows, paramsym.generic(network)):
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


@pytest.mark.skipif(
    shutil.which("pdflatex") is None and not os.environ.get("PARAMSYM_REQUIRE_TEX"),
    reason="no TeX engine here (CI installs texlive and sets PARAMSYM_REQUIRE_TEX)",
)
def test_standalone_document_compiles(tmp_path):
    tex = tmp_path / "net.tex"
    result = run("latex", "examples/resnet18_symbolic.psym", "--standalone", "--group-digits", "-o", str(tex))
    assert result.returncode == 0
    compiled = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert compiled.returncode == 0, compiled.stdout[-2000:]
    assert (tmp_path / "net.pdf").read_bytes().startswith(b"%PDF")


@pytest.mark.parametrize("program", CLASHING)
def test_textbook_symbols_never_look_like_the_programs(program):
    network = paramsym.parse(program)
    text = paramsym.latex(network)
    rows = re.search(r"\\begin\{align\*\}\n(.*?)\n\\end\{align\*\}", text, re.S).group(1).split(" \\\\\n")
    own = {sympy.latex(s) for s in network.symbols.values()}
    for row in rows:
        textbook = row.split("&&")[1].split("&=")[0]
        for s in parse(textbook.strip()).free_symbols:
            assert s.name not in own, row
    for _, template, _values, _ in paramsym.generic(network):
        assert not {s.name for s in template.free_symbols} & set(network.symbols)


@pytest.mark.parametrize(
    "program, row",
    [
        ("conv3x3(3->C) > bn", r"\text{bn}: && 2 C' &= 2 \cdot C = 2 C"),
        (
            "conv3x3(C_in->16) > conv3x3(->8)",
            r"\text{conv3x3}: && k_{h} k_{w} C'_{in} C_{out} &= 3 \cdot 3 \cdot C_{in} \cdot 16 = 144 C_{in}",
        ),
        # (a repeated layer with a bias was an internal error: the template's sum inside a product)
        (
            "input(8x8x4) > (conv1x1(->4, bias)) * N",
            r"\text{conv1x1[1..N]}: && \left(k_{h} k_{w} C_{in} C_{out} + C_{out}\right) N' &= "
            r"\left(1 \cdot 1 \cdot 4 \cdot 4 + 4\right) \cdot N = 20 N",
        ),
        ("conv3x3(3->16) > bn", r"\text{bn}: && 2 C &= 2 \cdot 16 = 32"),  # no clash: the textbook C stays
        # a square is a power, not "C C" (C'^{2} is valid LaTeX: primes are read before the ^)
        (
            "input(32x768) > attn(heads=12, bias)",
            r"\text{attn}: && 4 C + 4 C^{2} &= 4 \cdot 768 + 4 \cdot 768^{2} = 2362368",
        ),
        ("input(32 x C) > attn(heads=4)", r"\text{attn}: && 4 C'^{2} &= 4 \cdot C^{2} = 4 C^{2}"),
        # posembed's table size is its own textbook symbol P, not the N of a repeat
        ("input(32x768) > (posembed(64)) * 2", r"\text{posembed[1]}: && C P &= 768 \cdot 64 = 49152"),
        ("input(T x P) > posembed(1024)", r"\text{posembed}: && C P' &= P \cdot 1024 = 1024 P"),
    ],
)
def test_primed_textbook_symbols(program, row):
    assert row in paramsym.latex(paramsym.parse(program))


def test_symbol_named_like_a_textbook_symbol_primes_it():
    # --symbol X=C writes the program's X as C: the textbook C becomes C'
    out = run("latex", "conv3x3(3->X) > bn", "--symbol", "X=C").stdout
    assert r"\text{bn}: && 2 C' &= 2 \cdot C = 2 C" in out


def test_generic_view_primes_clashing_names():
    out = run("formula", "conv3x3(3->C) > bn", "--view", "generic").stdout
    assert "bn: 2*C'  with C' = C  ->  2*C" in out
