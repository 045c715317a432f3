"""`wrap_lines`: explain's lines fitted to a terminal, words never broken, continuations indented."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paramsym.render.explain import wrap_lines


@pytest.mark.parametrize(
    "text, width, expected",
    [
        ("short line", 80, "short line"),
        (
            "   Fan-in: each output value is connected to 288 inputs of the layer",
            30,
            "   Fan-in: each output value\n   is connected to 288 inputs\n   of the layer",
        ),
        (
            "1. conv3x3 (line 1, column 1), 32 -> 64 channels, with bias",
            30,
            "1. conv3x3 (line 1, column 1),\n   32 -> 64 channels, with\n   bias",
        ),
        (
            "12. dense (line 3, column 9), 16 -> 16 channels, with bias",
            30,
            "12. dense (line 3, column 9),\n    16 -> 16 channels, with\n    bias",
        ),
        # a word longer than the line stays whole
        ("x 131,072,000,000,000,000,000,000 y", 20, "x\n131,072,000,000,000,000,000,000\ny"),
        ("a\n\nb", 5, "a\n\nb"),
    ],
)
def test_wrap_lines(text, width, expected):
    assert wrap_lines(text, width) == expected


words = st.text(alphabet="abcxyz0123456789,.·()", min_size=1, max_size=12)


@given(st.lists(st.lists(words, min_size=1, max_size=30), min_size=1, max_size=5), st.integers(25, 120))
def test_wrapped_lines_fit_and_keep_every_word(paragraphs, width):
    text = "\n".join("   " + " ".join(p) for p in paragraphs)
    out = wrap_lines(text, width)
    assert out.split() == text.split()
    assert all(len(line) <= width or " " not in line.strip() for line in out.splitlines())
