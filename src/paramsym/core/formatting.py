"""Formulas and numbers as text, the way every printer shows them."""

from __future__ import annotations

from fractions import Fraction


def human(expr) -> str:
    """A formula as people write it: `90*C^2 + 74*C + 10`."""
    if expr is None:
        return "?"
    return str(expr).replace("**", "^")


def grouped(value) -> str:
    """`1,234,567` for an int; anything else as it prints."""
    return f"{value:,}" if isinstance(value, int) else str(value)


def listed(names, at_most: int = 20) -> str:
    """`A, B, C` (or `none`); a long list by its first `at_most` names and how many more: a message that
    lists a program's symbols stays short when a program has thousands."""
    names = list(names)
    if not names:
        return "none"
    if len(names) <= at_most:
        return ", ".join(names)
    return f"{', '.join(names[:at_most])} and {len(names) - at_most:,} more"


def exact(value) -> str:
    """`1,012`, or a fraction exactly (a total where the network is not valid): `1,012.5`, or `3037/3`
    when it has no finite decimal."""
    if not isinstance(value, Fraction) or value.denominator == 1:
        return grouped(int(value)) if isinstance(value, Fraction) else grouped(value)
    for places in range(1, 19):
        scaled = value * 10**places
        if scaled.denominator == 1:
            whole, part = divmod(abs(int(scaled)), 10**places)
            return f"{'-' if value < 0 else ''}{whole:,}.{part:0{places}d}"
    return f"{value.numerator}/{value.denominator}"


# ---- numbers the way people read them --------------------------------------------------------------
# Three significant digits and a unit: 6,738,415,616 parameters are "6.74 B", 26,953,662,464 bytes are
# "27.0 GB". Rounded in exact integer arithmetic (no float: a count may have thousands of digits). Trailing
# zeros are kept when the figure is rounded ("1.00 M" for 999,999) and dropped when it is exact ("5 M",
# "16 GB"). These are for reading only: tables keep the exact number beside them, JSON and CSV only it.

COUNT_UNITS = (("", 1), ("k", 10**3), ("M", 10**6), ("B", 10**9), ("T", 10**12))
BYTE_UNITS = (("kB", 10**3), ("MB", 10**6), ("GB", 10**9), ("TB", 10**12), ("PB", 10**15))
BINARY_UNITS = (("KiB", 2**10), ("MiB", 2**20), ("GiB", 2**30), ("TiB", 2**40), ("PiB", 2**50))
FLOP_UNITS = tuple((f"{prefix}FLOP", 1000**i) for i, prefix in enumerate(("", "k", "M", "G", "T", "P", "E", "Z", "Y")))
# seconds: a year is 365.25 days (a Julian year)
TIME_UNITS = (
    ("ns", Fraction(1, 10**9)),
    ("us", Fraction(1, 10**6)),
    ("ms", Fraction(1, 10**3)),
    ("s", 1),
    ("min", 60),
    ("h", 3600),
    ("days", 86400),
    ("years", 31_557_600),
)


def _round_half_up(value: Fraction) -> int:
    return int((value + Fraction(1, 2)) // 1)


def _scaled(value, units, digits: int = 3) -> str:
    """`value` in the largest of `units` (name, size; smallest first) that it reaches, to `digits`
    significant digits: `6.74 B`. Below the smallest unit it is shown in the smallest."""
    x = Fraction(value)
    sign, x = ("-", -x) if x < 0 else ("", x)
    index = 0
    for i, (_, size) in enumerate(units):
        if x >= size:
            index = i
    while True:
        name, size = units[index]
        q = x / size
        whole = len(str(int(q))) if q >= 1 else 1
        places = max(digits - whole, 0)
        rounded = _round_half_up(q * 10**places)
        if index + 1 < len(units) and Fraction(rounded, 10**places) * size >= units[index + 1][1]:
            index += 1  # 999,999 rounds to 1,000 k: it is 1.00 M
            continue
        break
    is_exact = Fraction(rounded, 10**places) == q
    if places:
        text = f"{rounded // 10**places:,}.{rounded % 10**places:0{places}d}"
        if is_exact:
            text = text.rstrip("0").rstrip(".")
    else:
        text = f"{rounded:,}"
    return f"{sign}{text} {name}".rstrip()


def count_text(value) -> str:
    """A count as people say it: 6,738,415,616 is `6.74 B`, 31,500,000,000,000 is `31.5 T`, 592 is `592`
    (k, M, B for billion, T for trillion; beyond, thousands of T)."""
    return _scaled(value, COUNT_UNITS)


def bytes_text(value, binary: bool = True) -> str:
    """A number of bytes in SI units (1 GB is 10^9 bytes, as `--budget 16GB` reads it), with the binary size
    beside it when it is a whole number of the binary unit of that size: `26.9 GB`, `85.9 GB, 80 GiB`,
    `512 bytes` (never `512 B`: B is a billion in a count). `binary=False`: the decimal figure alone."""
    x = Fraction(value)
    if abs(x) < 1000:
        return f"{exact(x)} bytes" if x != 1 else "1 byte"
    text = _scaled(x, BYTE_UNITS)
    if binary and x.denominator == 1 and x > 0:
        n = int(x)
        decimal_index = max(i for i, (_, size) in enumerate(BYTE_UNITS) if n >= size or i == 0)
        unit, size = BINARY_UNITS[decimal_index]
        if n % size == 0 and n % BYTE_UNITS[decimal_index][1] != 0 and n // size < 10**6:
            text += f", {n // size:,} {unit}"
    return text


def flops_text(value) -> str:
    """FLOPs: `31.5 TFLOP`, `1.2 PFLOP`, up to YFLOP (10^24)."""
    return _scaled(value, FLOP_UNITS)


def seconds_text(value) -> str:
    """A time: `12.3 ms`, `4.2 h`, `17 days`."""
    x = Fraction(value)
    if x == 0:
        return "0 s"
    return _scaled(x, TIME_UNITS)


def unit_text(value, unit: str) -> str:
    """`value` as people read it, by the unit of its quantity (Quantity.unit; "ns": whole nanoseconds)."""
    if unit == "ns":
        return seconds_text(Fraction(value) / 10**9)
    return {"bytes": bytes_text, "flops": flops_text, "seconds": seconds_text}.get(unit, count_text)(value)


def quantity_unit(name: str) -> str:
    """The unit of the quantity `name` (Quantity.unit); a name ending in `_bytes` is in bytes whatever it says."""
    from .quantities import BY_NAME

    q = BY_NAME.get(name)
    return "bytes" if name.endswith("_bytes") else q.unit if q is not None else "count"


def readable(value, unit: str = "count") -> str:
    """`value` exactly, and when it is large, also as people read it: `6,738,415,616 (6.74 B)`,
    `85,899,345,920 (85.9 GB, 80 GiB)`. Counts and FLOPs from 10^6 on, bytes from 10^3 on, never a
    fraction; a time always (`5,400 (1.5 h)`, `3/8 (375 ms)`)."""
    text = exact(value)
    if unit in ("seconds", "ns") and isinstance(value, (int, Fraction)) and value != 0:
        return text + f" ({unit_text(value, unit)})"
    whole = isinstance(value, int) or (isinstance(value, Fraction) and value.denominator == 1)
    if whole and abs(value) >= (1000 if unit == "bytes" else 10**6):
        text += f" ({unit_text(value, unit)})"
    return text
