"""paramsym.language.lalr, the faster loop over Lark's parse tables, gives what Lark's own parse gives:
the same syntax tree for a program, and for a broken one the same error (Lark's, at the same
place, or paramsym's from the transformer or the postlexer)."""

import random
from pathlib import Path

import pytest
from lark import Lark
from lark.exceptions import UnexpectedInput

from paramsym import ParamsymError
from paramsym.language import lalr, syntax

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.psym"))


def outcome(run, text, start):
    try:
        return "ok", run(text, start)
    except UnexpectedInput as error:
        return (
            type(error).__name__,
            str(error),
            getattr(error, "line", None),
            getattr(error, "column", None),
            sorted(getattr(error, "expected", None) or getattr(error, "allowed", None) or ()),
        )
    except ParamsymError as error:
        return type(error).__name__, error.message, error.pos


def both(text, start="start"):
    parser = syntax._parser()
    fast = outcome(lambda t, s: lalr.parse(parser, t, s), text, start)
    slow = outcome(lambda t, s: parser.parse(t, start=s), text, start)
    return fast, slow


def test_the_loop_drives_paramsyms_parser():
    assert lalr._plan(syntax._parser()) is not None


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_gives_the_same_tree(path):
    fast, slow = both(path.read_text())
    assert fast[0] == "ok" and fast == slow


BROKEN = [
    "",
    "\n\n",
    "relu >",
    "conv3x3(3->16",
    "conv3x3(3->16))",
    "conv3x3(3->16) relu",
    "let = 3\nrelu",
    "let C = 4",
    "input(8x8x3) > conv3x3(->5/0)",
    "dense(->1e999)",
    "relu ; ; relu",
    "(relu) * ",
    "conv3x3(3->-4, bias)",
    "res(relu | )",
    "dense(2->3) > [relu]",
    "'relu'",
    "dense(\u0663->2)",
    "floor > relu",
    "sqrt(4)",
    "dense(->2^2^2^2^2^2)",
    "a\n>\nb\n\n>c",
    "def b(c) = relu\nb(1) > b(2,)",
    "relu\n;\nrelu",
    "x",
    "let let = 2\nrelu",
    "dense(->C, C)",
    "relu" + ")" * 3,
]


@pytest.mark.parametrize("text", BROKEN)
def test_a_broken_or_odd_program_gives_the_same_outcome(text):
    fast, slow = both(text)
    assert fast == slow


@pytest.mark.parametrize("text", ["2C", "C/2 + 1", "floor(C/3)", "min(C, 4)", "C +", "", "C ^ C", "(C"])
def test_an_expression_gives_the_same_outcome(text):
    fast, slow = both(text, "expression")
    assert fast == slow


def test_programs_with_one_character_changed_give_the_same_outcome():
    """A differential check: every example, with characters deleted, doubled or replaced at
    random places, is read alike by both loops (a tree, or the same error at the same place)."""
    rng = random.Random(9)
    sources = [path.read_text() for path in EXAMPLES[:8]]
    alphabet = "()>-x,=;|*^/+\n 0123456789abcCx_"
    for _ in range(300):
        text = rng.choice(sources)
        at = rng.randrange(len(text))
        change = rng.randrange(3)
        if change == 0:
            text = text[:at] + text[at + 1 :]
        elif change == 1:
            text = text[:at] + text[at] + text[at:]
        else:
            text = text[:at] + rng.choice(alphabet) + text[at + 1 :]
        fast, slow = both(text)
        assert fast == slow, text


def test_a_parser_it_cannot_drive_is_left_to_lark():
    earley = Lark('start: "a"+', parser="earley")
    assert lalr._plan(earley) is None
    assert lalr.parse(earley, "aaa", "start") == earley.parse("aaa", start="start")
