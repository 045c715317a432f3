"""The one exception family of paramsym.

Every mistake in a program or in a request raises a subclass of ParamsymError.
Its text is complete: what is wrong, where (line and column), the source line
with a caret under the spot, and a hint when there is one. The CLI prints it
as it is and exits with status 2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A line is shown whole when it fits 80 columns with its gutter; a longer one (a megabyte program on one line)
# as a window around the caret, so that the caret stays under its column on an 80-column terminal.
_COLUMNS = 80
# Control characters in an excerpt are shown as U+FFFD, one for one, so the caret stays in place.
_CONTROL = dict.fromkeys((*range(32), 127), "�")
# A name of more than 100 characters (a 20,000-character --set name) is shown by its start and its length.
_LONG_WORD = re.compile(r"(?<![A-Za-z0-9_])[A-Za-z_][A-Za-z0-9_]{100,}")


def _clipped(text: str) -> str:
    return _LONG_WORD.sub(lambda m: f"{m.group()[:20]}...({len(m.group()):,} characters)", text)


# The label a message's first line starts with: `usage error: `, `hint: `, `note: `
_LABEL = re.compile(r"[a-z][a-z ]{0,20}: ")


def _wrapped(text: str, width: int) -> str:
    """`text` (`hint: ...`, a message that may hold lines of its own) with each line longer than `width` broken at
    spaces: the first line's rest continues under the text after its label (`usage error: `), another line's under
    its own indentation; a word longer than the width stays whole."""
    import textwrap  # only for a message on a terminal

    lines = []
    for index, line in enumerate(text.split("\n")):
        if len(line) <= width:
            lines.append(line)
            continue
        indent = len(line) - len(line.lstrip(" "))
        label = _LABEL.match(line)
        if index == 0 and label:
            indent = label.end()
        indent = indent if indent <= width // 2 else 2
        lines += textwrap.wrap(
            line, width, subsequent_indent=" " * indent, break_long_words=False, break_on_hyphens=False
        )
    return "\n".join(lines)


@dataclass(frozen=True)
class Position:
    """A 1-based line and column in the program text."""

    line: int
    column: int

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}"


def source_excerpt(source: str, pos: Position) -> str:
    """The source line at `pos` with a caret under the column, trimmed if long."""
    lines = source.splitlines() or [""]
    text = lines[pos.line - 1] if 0 < pos.line <= len(lines) else ""
    caret = max(pos.column - 1, 0)
    gutter = str(pos.line)
    room = _COLUMNS - len(gutter) - 3  # after "12 | "
    if len(text) > room:
        window = room - 6  # and a "..." on each side
        start = max(min(caret - window // 2, len(text) - window), 0)
        end = min(start + window, len(text))
        prefix = "..." if start > 0 else ""
        text = prefix + text[start:end] + ("..." if end < len(text) else "")
        caret = caret - start + len(prefix)
    text = text.replace("\t", " ").translate(_CONTROL)  # a NUL or an escape code is never echoed
    pad = " " * len(gutter)
    return f"{pad} |\n{gutter} | {text}\n{pad} | {' ' * caret}^"


class ParamsymError(Exception):
    """Base class: a program or a request that paramsym cannot accept."""

    kind = "error"

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        pos: Position | None = None,
        hint: str | None = None,
        notes: tuple[tuple[str, Position], ...] = (),
    ):
        super().__init__(message)
        self.message = message
        self.source = source
        self.pos = pos
        self.hint = hint
        self.notes = notes

    @property
    def line(self) -> int | None:
        return self.pos.line if self.pos else None

    @property
    def column(self) -> int | None:
        return self.pos.column if self.pos else None

    def with_source(self, source: str) -> ParamsymError:
        """Attach the program text so the message can show the line."""
        if self.source is None:
            self.source = source
        return self

    def __str__(self) -> str:
        return self.format()

    def format(self, width: int = 0) -> str:
        """The complete message; with `width` (a terminal's), its lines of words (the message, each note, the hint)
        broken at spaces to fit, continued under the text after their label, so that a terminal never breaks a word;
        the source line and its caret stay as they are."""

        def words(line: str) -> str:
            return _wrapped(line, width) if width else line

        parts = [words(f"{self.kind}: {_clipped(self.message)}")]
        if self.pos is not None:
            parts.append(f"  --> {self.pos}")
            if self.source is not None:
                parts.append(source_excerpt(self.source, self.pos))
        for text, pos in self.notes:
            parts.append(words(f"note: {_clipped(text)} ({pos})"))
            if self.source is not None:
                parts.append(source_excerpt(self.source, pos))
        if self.hint:
            parts.append(words(f"hint: {_clipped(self.hint)}"))
        return "\n".join(parts)


class ParamsymSyntaxError(ParamsymError):
    """The text does not follow the grammar."""

    kind = "syntax error"


class ParamsymLimitError(ParamsymError):
    """The input is beyond what paramsym accepts (too large, too deep)."""

    kind = "limit error"


class ParamsymNameError(ParamsymError):
    """An unknown layer, argument, function or block name."""

    kind = "name error"


class ParamsymShapeError(ParamsymError):
    """Channels or shapes that do not fit together."""

    kind = "shape error"


class ParamsymArgumentError(ParamsymError):
    """A layer argument that is missing, repeated or has an impossible value."""

    kind = "argument error"


class ParamsymEvaluationError(ParamsymError):
    """A formula that cannot be turned into a number with the values given."""

    kind = "evaluation error"


class ParamsymUsageError(ParamsymError):
    """A request (command-line option, API argument) that is wrong."""

    kind = "usage error"


class ImportRefused(ParamsymUsageError):
    """A PyTorch module or operation that the language cannot express (paramsym import)."""
