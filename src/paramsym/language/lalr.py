"""A faster loop for Lark's LALR parser: the same lexer rules, postlexer, parse tables and
callbacks (the transformer) as `Lark.parse`, in one tight loop instead of Lark's general one.

It runs the same steps in the same order (a token is read only when the parser asks for it,
and every reduction calls the same callback), so a program gives the same syntax tree and a
transformer or the postlexer raises the same error at the same point. When the input has a
syntax error (a character no terminal matches, or a token the table has no action for) it
gives up, and `parse` lets Lark parse the text again, so that the error is Lark's own, with
everything paramsym's messages read from it. A parser this loop does not know how to drive
(another lexer, several scanner patterns, a lexer callback it cannot replay) is parsed by
Lark as well.
"""

from __future__ import annotations

from lark import Lark, Token
from lark.lexer import BasicLexer
from lark.parsers.lalr_analysis import Shift


class _GiveUp(Exception):
    """A syntax error: Lark parses the text again and reports it."""


_plans: dict = {}  # id(parser) -> (parser, plan)


def _plan(parser: Lark):
    """What the loop needs, taken from the parser once: None when it cannot drive this parser."""
    known = _plans.get(id(parser))
    if known is not None and known[0] is parser:
        return known[1]
    plan = None
    try:
        frontend = parser.parser
        connector = frontend.lexer
        lexer = getattr(connector, "lexer", connector)
        postlex = getattr(connector, "postlexer", None)
        lalr = frontend.parser.parser
        scanner = lexer.scanner
        if (
            type(lexer) is BasicLexer
            and len(scanner._mres) == 1
            and not lexer.user_callbacks
            and frontend.lexer_conf.lexer_type == "basic"
            and not getattr(lalr, "debug", False)
        ):
            callbacks = lalr.callbacks
            table = lalr.parse_table
            if not all(type(state) is int for state in table.states):
                raise TypeError("states that are not numbers")
            reductions = {}
            states = {}
            for state, actions in table.states.items():
                row = {}
                for name, (action, arg) in actions.items():
                    if action is Shift:
                        row[name] = arg
                    else:  # a reduction: a tuple, never an int, so the loop tells them apart by type
                        if arg not in reductions:
                            reductions[arg] = (len(arg.expansion), arg.origin.name, callbacks[arg])
                        row[name] = reductions[arg]
                states[state] = row
            token_callbacks = {name: f for name, f in callbacks.items() if isinstance(name, str)}
            plan = (
                states,
                table.start_states,
                table.end_states,
                token_callbacks,
                scanner._mres[0].match,
                lexer.ignore_types,
                lexer.newline_types,
                dict(lexer.callback),
                postlex,
            )
    except Exception:  # an unexpected Lark: its own parse is always right
        plan = None
    _plans[id(parser)] = (parser, plan)
    return plan


def _tokens(text: str, match, ignore_types, newline_types, callback):
    """Lark's BasicLexer.lex: the same tokens with the same positions."""
    new = Token._future_new
    position, line, line_start, end = 0, 1, 0, len(text)
    while position < end:
        found = match(text, position)
        if found is None:
            raise _GiveUp
        value, kind = found.group(0), found.lastgroup
        ignored = kind in ignore_types
        start, start_line, column = position, line, position - line_start + 1
        if kind in newline_types:
            newlines = value.count("\n")
            if newlines:
                line += newlines
                line_start = position + value.rindex("\n") + 1
        position += len(value)
        if ignored and kind not in callback:
            continue
        token = new(kind, value, start, start_line, column, line, position - line_start + 1, position)
        if kind in callback:
            token = callback[kind](token)
        if not ignored:
            yield token


def parse(parser: Lark, text: str, start: str):
    """`parser.parse(text, start=start)`, faster."""
    plan = _plan(parser)
    if plan is None or not isinstance(text, str):
        return parser.parse(text, start=start)
    states, start_states, end_states, token_callbacks, match, ignore_types, newline_types, callback, postlex = plan
    stream = _tokens(text, match, ignore_types, newline_types, callback)
    if postlex is not None:
        stream = postlex.process(stream)
    state_stack = [start_states[start]]
    value_stack: list = []
    push_state, push_value = state_stack.append, value_stack.append
    token = None
    try:
        for token in stream:
            kind = token.type
            while True:
                action = states[state_stack[-1]].get(kind)
                if action is None:
                    raise _GiveUp
                if type(action) is int:  # shift
                    push_state(action)
                    push_value(token_callbacks[kind](token) if kind in token_callbacks else token)
                    break
                size, origin, reduce = action
                if size:
                    children = value_stack[-size:]
                    del state_stack[-size:]
                    del value_stack[-size:]
                else:
                    children = []
                push_value(reduce(children))
                push_state(states[state_stack[-1]][origin])
        end_state = end_states[start]
        while True:  # the end: reduce until the start symbol is accepted
            action = states[state_stack[-1]].get("$END")
            if action is None or type(action) is int:
                raise _GiveUp
            size, origin, reduce = action
            if size:
                children = value_stack[-size:]
                del state_stack[-size:]
                del value_stack[-size:]
            else:
                children = []
            push_value(reduce(children))
            push_state(states[state_stack[-1]][origin])
            if state_stack[-1] == end_state:
                return value_stack[-1]
    except _GiveUp:
        return parser.parse(text, start=start)  # raises Lark's own error for it
