"""Readable programs: a flat program (one stage after another, as `paramsym import` traces it)
rewritten with `def` blocks for the structures that recur and `(SEQ) * n` for runs.

The pass works on the syntax tree, never on the text:

1. The program is parsed and built; each layer that states its input channels (`64->256`) loses
   them when the layer before gives exactly those (`->256`), so that a block reads the same
   wherever it is used.
2. The stages are grouped into units. An imported model says where each layer comes from (the
   modules around it, `module_stacks`): the stages of one module that is not a plain container
   (a Bottleneck, an InvertedResidual, a _DenseLayer) form a unit. Without that, a composite
   (res, concat, ...) and the layers without parameters after it form a unit.
3. Units that are the same up to their numbers (channels, strides, ...) become one `def` whose
   parameters are the numbers that differ: equal columns share a parameter, a column that is a
   whole multiple of another is written as that multiple (`->4c`). A unit that does not recur
   is read again as the units inside it, if any.
4. Consecutive equal stages, or equal groups of stages, become `(SEQ) * n`, at every level.
5. The text is written in lines of at most WIDTH columns, broken at `>` and `|` (a composite that does
   not fit hangs its branches under `concat(`) and, as a last resort, between a layer's arguments.
6. The result is parsed and counted again; where any count, the state, the MACs or the output
   shape would differ from the flat program's, or where it would take more lines than the flat
   program written in lines of WIDTH (`fitted`), that flat program is returned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sympy
from sympy.printing.str import StrPrinter

from .. import expansion, kinds
from ..errors import ParamsymError
from ..kinds import combinators
from ..language.syntax import (
    KEYWORDS,
    Call,
    Channels,
    Composite,
    Define,
    Keyword,
    Let,
    Named,
    Positional,
    Repeat,
    Sequence,
    parse_program,
    symbol,
)

WIDTH = 79  # lines longer than this are broken at `>` and `|`: an 80-column terminal
MAX_PERIOD = 12  # the longest group of stages a run may repeat
MAX_STEP = 1000  # the largest multiple of its step a schedule (`droppath(i/170)`) may call for
# keywords whose value, when not written, a built layer records (and writing it changes nothing)
_FILLABLE = ("stride", "pad", "dilation", "groups")
_ROLES = {"stride": "s", "groups": "g", "pad": "pad", "dilation": "d", "k": "k"}
_ROLE_ORDER = ("c", "s", "g", "k", "pad", "d", "n", "p", "v")
_PLAIN = {"Sequential", "ModuleList", "ModuleDict"}
# words of the grammar that cannot be names (`x` joins sizes)
_GRAMMAR = {*KEYWORDS, "input"}


# ---- the tree the pass works on: the syntax tree without positions --------------------------------


@dataclass(frozen=True)
class Arg:
    """`cin->cout` (form "->"), `name=values` (form "=") or a bare value (form "")."""

    form: str
    name: str = ""
    values: tuple = ()  # "->": (cin or None, cout)


@dataclass(frozen=True)
class Layer:
    """A layer or a block call; `fills`: (keyword, values, written) for the keywords in _FILLABLE that its
    kind takes, with the values the built layer used where they are not written."""

    name: str
    args: tuple
    alias: str | None = None
    fills: tuple = ()
    origin: tuple | None = field(default=None, compare=False, hash=False)


@dataclass(frozen=True)
class Comp:
    kind: str
    branches: tuple  # of tuples of stages
    args: tuple = ()


@dataclass(frozen=True)
class Rep:
    body: tuple  # stages
    count: sympy.Expr


@dataclass
class _Group:
    """The stages of one module (its key in the module stack, its class, whether it is a plain container)."""

    module: tuple
    items: list  # stages and _Group


@dataclass
class _Unit:
    group: _Group
    stages: tuple
    key: tuple = ()
    values: tuple = ()  # (value, role) per hole
    written: tuple = ()  # per fillable slot, whether the unit writes it


# ---- from the syntax tree ---------------------------------------------------------------------------


class _Reader:
    """Syntax tree -> the pass's tree: blocks inlined, numeric repeats unrolled, input channels dropped
    where the layer before gives them."""

    def __init__(self, program, layers, inline: bool = True):
        self.defs = {s.name: s for s in program.statements if isinstance(s, Define)} if inline else {}
        self.inline = inline
        self.by_pos: dict = {}
        for layer in layers:
            self.by_pos.setdefault(layer.pos, []).append(layer)

    def stages(self, stages, env) -> list:
        out = []
        for stage in stages:
            out.extend(self.stage(stage, env))
        return out

    def stage(self, stage, env) -> list:
        if isinstance(stage, Sequence):
            return self.stages(stage.stages, env)
        if isinstance(stage, Repeat):
            count = stage.count.xreplace(env)
            body = self.stages(stage.body.stages, env)
            if count.is_Integer and self.inline:
                return [s for _ in range(int(count)) for s in body]
            return [Rep(tuple(body), count)]
        if isinstance(stage, Composite):
            return [
                Comp(
                    stage.kind,
                    tuple(tuple(self.stage(b, env)) for b in stage.branches),
                    tuple(self.arg(a, env) for a in stage.args),
                )
            ]
        if isinstance(stage, Named):
            return [self.layer(stage.call, env, stage.name)]
        if stage.name in self.defs:
            define = self.defs[stage.name]
            values = dict(zip(define.params, (a.value[0] for a in stage.args if isinstance(a, Positional))))
            values.update({a.name: a.value[0] for a in stage.args if isinstance(a, Keyword)})
            inner = {symbol(k): v.xreplace(env) for k, v in values.items()}
            return self.stages(define.body.stages, inner)
        return [self.layer(stage, env)]

    def arg(self, arg, env) -> Arg:
        if isinstance(arg, Channels):
            return Arg("->", values=(None if arg.cin is None else arg.cin.xreplace(env), arg.cout.xreplace(env)))
        if isinstance(arg, Keyword):
            return Arg("=", arg.name, tuple(v.xreplace(env) for v in arg.value))
        return Arg("", values=tuple(v.xreplace(env) for v in arg.value))

    def layer(self, call: Call, env, alias=None) -> Layer:
        built = self.by_pos.get(call.pos, [])
        args = [self.arg(a, env) for a in call.args]
        if built and all(
            b.in_shape.channels is not None
            and b.cin is not None
            and (b.cin == b.in_shape.channels or expansion.expand(b.cin - b.in_shape.channels) == 0)
            for b in built
        ):
            args = [Arg("->", values=(None, a.values[1])) if a.form == "->" else a for a in args]
        fills = []
        found = kinds.lookup(call.name)
        if found is not None and built:
            for name in _FILLABLE:
                if name not in found[0].keywords:
                    continue
                written = next((a for a in args if a.form == "=" and a.name == name), None)
                if written is not None:
                    fills.append((name, _same(written.values), True))
                    continue
                used = getattr(built[0], name, ())
                used = (used,) if isinstance(used, sympy.Expr) else tuple(used)
                if used and all(isinstance(v, sympy.Expr) and v.is_Integer for v in used):
                    fills.append((name, _same(used), False))
            args = [a for a in args if not (a.form == "=" and a.name in _FILLABLE and a.name in found[0].keywords)]
        return Layer(call.name, tuple(args), alias, tuple(fills))


def _same(values: tuple) -> tuple:
    """(2, 2) as (2,): one value for every axis."""
    return values[:1] if len(values) > 1 and all(v == values[0] for v in values) else tuple(values)


# ---- origins: which modules each layer comes from -----------------------------------------------------


def module_stacks(graph) -> dict:
    """For each node of a torch.fx graph, by `_` + its name: the modules around it, outermost first, as
    (key, class name, plain container) (the module a call_module node calls is left out)."""
    stacks = {}
    for node in graph.nodes:
        stack = list((node.meta.get("nn_module_stack") or {}).items())
        if node.op == "call_module" and stack:
            stack = stack[:-1]
        entries = []
        for key, (_path, cls) in stack:
            module = getattr(cls, "__module__", "") if not isinstance(cls, str) else cls.rpartition(".")[0]
            name = getattr(cls, "__name__", None) if not isinstance(cls, str) else cls.rpartition(".")[2]
            entries.append((key, name or "", name in _PLAIN and module.startswith("torch.nn")))
        stacks[f"_{node.name}"] = tuple(entries)
    return stacks


def _attach(stages: list, skeleton: tuple, stacks: dict) -> list:
    """The stages with each layer's origin, from the same structure written with op names (`_conv1`)."""
    if len(stages) != len(skeleton):
        return stages
    out = []
    for stage, mark in zip(stages, skeleton):
        if isinstance(stage, Layer) and isinstance(mark, Layer) and mark.name in stacks:
            stage = Layer(stage.name, stage.args, stage.alias, stage.fills, stacks[mark.name])
        elif isinstance(stage, Comp) and isinstance(mark, Comp) and len(stage.branches) == len(mark.branches):
            stage = Comp(
                stage.kind,
                tuple(tuple(_attach(list(b), m, stacks)) for b, m in zip(stage.branches, mark.branches)),
                stage.args,
            )
        elif isinstance(stage, Rep) and isinstance(mark, Rep):
            stage = Rep(tuple(_attach(list(stage.body), mark.body, stacks)), stage.count)
        out.append(stage)
    return out


def _leaves(stage):
    if isinstance(stage, Layer):
        yield stage
    elif isinstance(stage, Comp):
        for branch in stage.branches:
            for s in branch:
                yield from _leaves(s)
    elif isinstance(stage, Rep):
        for s in stage.body:
            yield from _leaves(s)


def _prefix(stage) -> tuple:
    """The modules around every layer of the stage (the longest common prefix of their stacks)."""
    stacks = [leaf.origin for leaf in _leaves(stage) if leaf.origin is not None]  # not `id`, the empty branch
    if not stacks:
        return ()
    common = stacks[0]
    for other in stacks[1:]:
        n = 0
        while n < min(len(common), len(other)) and common[n] == other[n]:
            n += 1
        common = common[:n]
    return common


def _groups(stages: list, depth: int) -> list:
    items, i = [], 0
    prefixes = [_prefix(s) for s in stages]
    while i < len(stages):
        if len(prefixes[i]) <= depth:
            items.append(stages[i])
            i += 1
            continue
        module, j = prefixes[i][depth], i
        while j < len(stages) and len(prefixes[j]) > depth and prefixes[j][depth] == module:
            j += 1
        items.append(_Group(module, _groups(stages[i:j], depth + 1)))
        i = j
    return items


def _group_stages(group: _Group) -> list:
    out = []
    for item in group.items:
        out.extend(_group_stages(item) if isinstance(item, _Group) else [item])
    return out


def _fallback(stages) -> list:
    """Without origins: a composite and the layers without numbers after it (relu) are a unit."""
    items, i = [], 0
    while i < len(stages):
        stage = stages[i]
        if isinstance(stage, Comp) and not combinators.lookup(stage.kind).side_head:
            j = i + 1
            while (
                j < len(stages)
                and isinstance(stages[j], Layer)
                and not stages[j].args
                and not stages[j].fills
                and stages[j].alias is None
            ):
                j += 1
            items.append(_Group(("", "", False), list(stages[i:j])))
            i = j
        else:
            items.append(stage)
            i += 1
    return items


def _is_block(group: _Group) -> bool:
    """A module whose stages may be a unit: not a plain container, and not a collection of blocks of
    one class (DenseNet's _DenseBlock, RegNet's AnyStage)."""
    if group.module[2]:
        return False
    inner = group.items
    return not (
        inner
        and all(isinstance(i, _Group) and not i.module[2] for i in inner)
        and len({i.module[1] for i in inner}) == 1
    )


# ---- templates: a stage with its numbers taken out -----------------------------------------------------


class _Holes:
    def __init__(self):
        self.values: list = []  # (value, role)
        self.written: list = []

    def take(self, value, role):
        if isinstance(value, sympy.Expr) and value.is_Number:
            self.values.append((value, role))
            return _HOLE
        return value


_HOLE = sympy.Dummy("hole")  # where a number was; no name a program can write


def _template(stage, holes: _Holes):
    if isinstance(stage, Layer):
        args = []
        for a in stage.args:
            if a.form == "->":
                args.append(Arg("->", values=(a.values[0], holes.take(a.values[1], "c"))))
            else:
                role = _ROLES.get(a.name, "v") if a.form == "=" else "p" if len(a.values) == 1 else "v"
                args.append(Arg(a.form, a.name, tuple(holes.take(v, role) for v in a.values)))
        fills = []
        for name, values, written in stage.fills:
            holes.written.append(written)
            fills.append((name, tuple(holes.take(v, _ROLES[name]) for v in values)))
        return ("L", stage.name, tuple(args), stage.alias, tuple(fills))
    if isinstance(stage, Comp):
        return (
            "C",
            stage.kind,
            tuple(tuple(_template(s, holes) for s in b) for b in stage.branches),
            tuple(_template_arg(a, holes) for a in stage.args),
        )
    return ("R", tuple(_template(s, holes) for s in stage.body), holes.take(stage.count, "n"))


def _template_arg(a: Arg, holes: _Holes):
    return (a.form, a.name, tuple(holes.take(v, "v") if v is not None else None for v in a.values))


def _fill(stage, values: list, written: list):
    """The stage with its holes (in the order _template took them) replaced by `values`; a fillable keyword
    is written where `written` says so."""
    if isinstance(stage, Layer):
        args = []
        for a in stage.args:
            if a.form == "->":
                args.append(Arg("->", values=(a.values[0], _next(a.values[1], values))))
            else:
                args.append(Arg(a.form, a.name, tuple(_next(v, values) for v in a.values)))
        fills = []
        for name, vals, _ in stage.fills:
            new = tuple(_next(v, values) for v in vals)
            fills.append((name, new, written.pop(0)))
        return Layer(stage.name, tuple(args), stage.alias, tuple(fills), stage.origin)
    if isinstance(stage, Comp):
        return Comp(
            stage.kind,
            tuple(tuple(_fill(s, values, written) for s in b) for b in stage.branches),
            tuple(
                Arg(a.form, a.name, tuple(_next(v, values) if v is not None else None for v in a.values))
                for a in stage.args
            ),
        )
    body = tuple(_fill(s, values, written) for s in stage.body)
    return Rep(body, _next(stage.count, values))


def _next(value, values: list):
    if isinstance(value, sympy.Expr) and value.is_Number:
        return values.pop(0)
    return value


# ---- units and blocks ----------------------------------------------------------------------------------


class _Factoring:
    def __init__(self, stages: list, reserved: set):
        self.stages = stages
        self.reserved = set(reserved)
        self.descended: set[int] = set()  # ids of groups read as the units inside them
        self.trees: dict[int, tuple] = {}  # id of a stage list -> (the list, its groups)
        self.final: dict[int, _Unit] = {}

    def _items(self, stages, depth: int) -> list:
        key = id(stages)
        if key not in self.trees:
            if any(leaf.origin is not None for s in stages for leaf in _leaves(s)):
                items = _groups(list(stages), depth)
            else:
                items = _fallback(stages)
            self.trees[key] = (stages, items)  # the list is kept, so that its id stays its own
        return self.trees[key][1]

    def _expand(self, items) -> list:
        out = []
        for item in items:
            if isinstance(item, _Group):
                if _is_block(item) and id(item) not in self.descended:
                    out.append(_Unit(item, tuple(_group_stages(item))))
                else:
                    out.extend(self._expand(item.items))
            else:
                out.append(item)
        return out

    def _walk(self, stages, depth: int, found: list) -> None:
        for item in self._expand(self._items(stages, depth)):
            if isinstance(item, _Unit):
                found.append(item)
            elif isinstance(item, Comp):
                for branch in item.branches:
                    self._walk(branch, len(_prefix(item)), found)
            elif isinstance(item, Rep):
                self._walk(item.body, len(_prefix(item)), found)

    def run(self) -> tuple[list, list]:
        while True:
            units: list[_Unit] = []
            self._walk(self.stages, 0, units)
            by_key: dict = {}
            for unit in units:
                holes = _Holes()
                unit.key = tuple(_template(s, holes) for s in unit.stages)
                unit.values, unit.written = tuple(holes.values), tuple(holes.written)
                by_key.setdefault(unit.key, []).append(unit)
            lonely = {id(u.group) for u in units if not _worth(u, len(by_key[u.key]))}
            if not lonely:
                break
            self.descended |= lonely
        self.final = {id(u.group): u for u in units}
        first = {}
        for i, unit in enumerate(units):
            first.setdefault(unit.key, i)
        blocks = {key: self._define(members) for key, members in by_key.items()}
        defines = sorted(blocks.values(), key=lambda d: first[d.key])
        for define in defines:
            define.name = self._name(define)
            define.name_params(self.reserved)
        return defines, self._rewrite(self.stages, 0, blocks)

    def _rewrite(self, stages, depth: int, blocks: dict) -> list:
        out = []
        for item in self._expand(self._items(stages, depth)):
            if isinstance(item, _Unit):
                unit = self.final[id(item.group)]
                out.append(blocks[unit.key].call(unit))
            elif isinstance(item, Comp):
                out.append(
                    Comp(
                        item.kind,
                        tuple(tuple(self._rewrite(b, len(_prefix(item)), blocks)) for b in item.branches),
                        item.args,
                    )
                )
            elif isinstance(item, Rep):
                out.append(Rep(tuple(self._rewrite(item.body, len(_prefix(item)), blocks)), item.count))
            else:
                out.append(item)
        return out

    def _define(self, members: list[_Unit]) -> _Define:
        """The block of units that differ only in numbers: a parameter per column of numbers that differ,
        except where a column is another's (equal, or a small multiple or fraction: `->6c`, `->c/4`,
        `groups=c`), the block's output channels first."""
        count = len(members[0].values)
        columns = [tuple(m.values[j][0] for m in members) for j in range(count)]
        roles = [members[0].values[j][1] for j in range(count)]
        varying = [j for j in range(count) if len(set(columns[j])) > 1]
        channels = [j for j in varying if roles[j] == "c"]
        output = columns[channels[-1]] if channels else None
        order = sorted(varying, key=lambda j: (roles[j] != "c", columns[j] != output, j))
        bases: list[dict] = []
        expression: dict[int, tuple] = {}
        for j in order:
            found = None
            for p in bases:
                if p["role"] == roles[j] or (roles[j] in ("g", "p", "v") and p["role"] == "c"):
                    factor = _ratio(columns[j], p["column"], small=p["role"] == "c")
                    if factor is not None:
                        found = (p, factor)
                        break
            if found is None:
                found = (
                    {"role": roles[j], "column": columns[j], "output": columns[j] == output, "hole": j},
                    sympy.Integer(1),
                )
                step = _schedule(columns[j]) if roles[j] == "p" else None
                if step is not None:  # the calls write i, the block i * step: `droppath(i/170)`
                    found[0]["step"] = step
                bases.append(found[0])
            expression[j] = found
            found[0]["first"] = min(found[0].get("first", j), j)
        # a fillable keyword is written when any member writes it; the body is that of the member that
        # writes the most
        written = [any(m.written[i] for m in members) for i in range(len(members[0].written))]
        base_member = max(members, key=lambda m: sum(m.written))
        return _Define(members, bases, expression, written, base_member)

    def _name(self, define) -> str:
        classes = [u.group.module[1] for u in define.members if u.group.module[1]]
        stem = max(classes, key=classes.count) if classes else "block"
        stem = re.sub(r"[^a-z0-9_]", "", stem.lower()).strip("_") or "block"
        if not stem[0].isalpha():
            stem = "block" + stem
        if kinds.is_layer_name(stem) or stem in _GRAMMAR:
            stem += "block"
        name, n = (stem, 2) if stem != "block" else ("block1", 2)
        while name in self.reserved or kinds.is_layer_name(name):
            name, n = f"{stem}{n}", n + 1
        self.reserved.add(name)
        return name


def _worth(unit: _Unit, uses: int) -> bool:
    """Whether a unit used `uses` times is worth a block: two layers or more, used twice or more, and not
    a short single stage used only twice (the block would be longer than the two stages)."""
    if uses < 2 or sum(1 for s in unit.stages for _ in _leaves(s)) < 2:
        return False
    return uses > 2 or len(unit.stages) > 1 or len(_sequence(unit.stages)) > WIDTH


def _ratio(column: tuple, base: tuple, small: bool):
    """The factor r with column = r * base throughout: 1, or (`small`) a whole number k or 1/k, 2 <= k <= 8."""
    if any(b == 0 for b in base):
        return None
    ratios = {sympy.Rational(c) / b if c.is_Rational and b.is_Rational else None for c, b in zip(column, base)}
    if len(ratios) != 1 or None in ratios:
        return None
    r = ratios.pop()
    if r == 1 or (small and any(r == k or r == sympy.Rational(1, k) for k in range(2, 9))):
        return r
    return None


def _schedule(column: tuple):
    """The step of a column of probabilities that are whole multiples of one fraction (a linear schedule:
    torchvision's stochastic depth gives block i of n the drop probability P * i / (n - 1)), the multiples
    at most MAX_STEP; None for any other column."""
    if not all(isinstance(v, sympy.Rational) and 0 <= v < 1 for v in column) or not any(column):
        return None
    step = sympy.Integer(0)
    for v in column:
        step = sympy.gcd(step, v)
    if step == 0 or any(v / step > MAX_STEP for v in column):
        return None
    return step


class _Define:
    def __init__(self, members, bases, expression, written, base_member):
        self.members, self.bases, self.expression = members, bases, expression
        self.written, self.base_member = written, base_member
        self.key = members[0].key
        self.name = ""
        self.params: list[str] = []

    def name_params(self, reserved: set) -> None:
        channel = sorted((p for p in self.bases if p["role"] == "c"), key=lambda p: p["first"])
        if len(channel) <= 3:  # the output channels c, the others mid, mid2
            inner = [p for p in channel if not p["output"]]
            names = {
                id(p): "c" if p["output"] else "mid" if inner.index(p) == 0 else f"mid{inner.index(p) + 1}"
                for p in channel
            }
        else:
            names = {id(p): f"c{i + 1}" for i, p in enumerate(channel)}
        counts: dict = {}
        ordered = sorted(self.bases, key=lambda p: (_ROLE_ORDER.index(p["role"]), p["first"]))
        taken = set()
        for p in ordered:
            if id(p) not in names:
                role = "i" if "step" in p else p["role"]
                counts[role] = counts.get(role, 0) + 1
                names[id(p)] = role if counts[role] == 1 else f"{role}{counts[role]}"
        for p in ordered:
            name, n = names[id(p)], 2
            while name in reserved or name in taken or name in _GRAMMAR or kinds.is_layer_name(name):
                name, n = f"{names[id(p)]}_{n}", n + 1
            taken.add(name)
            p["name"] = name
        self.params = [p["name"] for p in ordered]
        self.ordered = ordered

    def body(self) -> list:
        member = self.base_member
        values = []
        for j, (value, _role) in enumerate(member.values):
            if j in self.expression:
                owner, factor = self.expression[j]
                values.append(factor * owner.get("step", 1) * symbol(owner["name"]))
            else:
                values.append(value)
        written = list(self.written)
        return [_fill(s, values, written) for s in member.stages]

    def call(self, unit: _Unit) -> Layer:
        args = []
        for p in self.ordered:
            args.append(Arg("", values=(unit.values[p["hole"]][0] / p.get("step", 1),)))
        return Layer(self.name, tuple(args))


# ---- runs ----------------------------------------------------------------------------------------------


def _runs(stages: list) -> list:
    """Consecutive equal stages or groups of stages as `(SEQ) * n`, inside every composite and repeat too."""
    stages = [_runs_inside(s) for s in stages]
    out, i, n = [], 0, len(stages)
    while i < n:
        best_period, best_count, best_saved = 1, 1, 0
        for period in range(1, min(MAX_PERIOD, (n - i) // 2) + 1):
            count = 1
            while (
                i + (count + 1) * period <= n
                and stages[i + count * period : i + (count + 1) * period] == stages[i : i + period]
            ):
                count += 1
            saved = (count - 1) * period
            if count >= 2 and saved > best_saved:
                best_period, best_count, best_saved = period, count, saved
        if best_count >= 2:
            body = stages[i : i + best_period]
            if not any(isinstance(leaf, Layer) and leaf.alias for s in body for leaf in _leaves(s)):
                out.append(Rep(tuple(_runs(body)) if best_period > 1 else tuple(body), sympy.Integer(best_count)))
                i += best_period * best_count
                continue
        out.append(stages[i])
        i += 1
    return out


def _repeats(stages) -> int:
    count = 0
    for stage in stages:
        if isinstance(stage, Rep):
            count += 1 + _repeats(stage.body)
        elif isinstance(stage, Comp):
            count += sum(_repeats(b) for b in stage.branches)
    return count


def _runs_inside(stage):
    if isinstance(stage, Comp):
        return Comp(stage.kind, tuple(tuple(_runs(list(b))) for b in stage.branches), stage.args)
    if isinstance(stage, Rep):
        return Rep(tuple(_runs(list(stage.body))), stage.count)
    return stage


# ---- text ------------------------------------------------------------------------------------------------


class _Printer(StrPrinter):
    def _print_Rational(self, expr):
        """0.025 as written, not 1/40 (a fraction whose decimal does not end stays p/q)."""
        q, places = int(expr.q), 0
        for prime in (2, 5):
            n = 0
            while q % prime == 0:
                q, n = q // prime, n + 1
            places = max(places, n)
        if q != 1 or places == 0:
            return super()._print_Rational(expr)
        digits = str(abs(int(expr.p)) * 10**places // int(expr.q)).rjust(places + 1, "0")
        return f"{'-' if expr.p < 0 else ''}{digits[:-places]}.{digits[-places:]}"

    def _print_Mul(self, expr):
        coefficient, rest = expr.as_coeff_Mul()
        if coefficient.is_Integer and coefficient > 1 and rest.is_Symbol:
            return f"{coefficient}{rest.name}"
        return super()._print_Mul(expr)

    def _print_Pow(self, expr, rational=False):
        return super()._print_Pow(expr, rational).replace("**", "^")

    def _print_Min(self, expr):
        return f"min({', '.join(self._print(a) for a in expr.args)})"

    def _print_Max(self, expr):
        return f"max({', '.join(self._print(a) for a in expr.args)})"

    def _print_ceiling(self, expr):
        return f"ceil({self._print(expr.args[0])})"


_PRINTER = _Printer()


def _expr(value) -> str:
    return _PRINTER.doprint(value)


def _dims(values) -> str:
    texts = [_expr(v) for v in values]
    plain = all(isinstance(v, sympy.Expr) and v.is_Integer and v >= 0 for v in values)
    return ("x" if plain else " x ").join(texts)


def _arg(a: Arg) -> str:
    if a.form == "->":
        cin, cout = a.values
        return f"{'' if cin is None else _expr(cin)}->{_expr(cout)}"
    if a.form == "=":
        return f"{a.name}={_dims(a.values)}"
    return _dims(a.values)


def _inline(stage) -> str:
    if isinstance(stage, Layer):
        args = (
            [_arg(a) for a in stage.args if a.form == "->"]
            + [f"{name}={_dims(values)}" for name, values, written in stage.fills if written]
            + [_arg(a) for a in stage.args if a.form != "->"]
        )
        text = stage.name + (f"({', '.join(args)})" if args else "")
        return text + (f" as {stage.alias}" if stage.alias else "")
    if isinstance(stage, Comp):
        extra = "".join(f", {_arg(a)}" for a in stage.args)
        return f"{stage.kind}({' | '.join(_sequence(b) for b in stage.branches)}{extra})"
    return f"({_sequence(stage.body)}) * {_expr(stage.count)}"


def _sequence(stages) -> str:
    return " > ".join(_inline(s) for s in stages)


def _over(lines: list[str], col: int, tail: int = 0) -> int:
    """The widest of `lines`, the first written from column `col` on, the last followed by `tail` characters."""
    widths = [len(line) for line in lines]
    widths[0] += col
    widths[-1] += tail
    return max(widths)


def _best(options: list[list[str]], col: int, width: int, tail: int = 0) -> list[str]:
    """Of layouts of one text, the one that fits `width` breaking the fewest layers between their arguments (a
    line that ends with `,`), then in the fewest lines (the first of equals); when none fits, the narrowest."""

    def cut(lines: list[str]) -> int:
        return sum(line.endswith(",") for line in lines)

    fitting = [lines for lines in options if _over(lines, col, tail) <= width]
    if fitting:
        return min(fitting, key=lambda lines: (cut(lines), len(lines)))
    return min(options, key=lambda lines: (_over(lines, col, tail), cut(lines), len(lines)))


def _lay(stage, col: int, cont: int, width: int, tail: int = 0) -> list[str]:
    """The stage written from column `col` on and followed by `tail` characters (the parentheses that close
    around it), broken into lines (each after the first with its indentation); `cont` is the column of the
    `>` that continues the sequence around it, from which a composite that does not fit may hang its
    branches: `concat(` alone, each branch on lines of its own, four columns in."""
    text = _inline(stage)
    if col + len(text) + tail <= width:
        return [text]
    if isinstance(stage, Layer):
        return _lay_call(stage, col, cont, width, tail)
    if isinstance(stage, Rep):
        end = f") * {_expr(stage.count)}"
        options = []
        for indent in (col + 1, cont + 4):  # continued under the first stage, or four columns in
            lines = _lay_sequence(stage.body, col + 1, indent, width, len(end) + tail)
            lines[0] = "(" + lines[0]
            lines[-1] += end
            options.append(lines)
        return _best(options, col, width, tail)
    end = "".join(f", {_arg(a)}" for a in stage.args) + ")"
    last = len(stage.branches) - 1
    # aligned: the branches one under the other after `concat(`
    start = col + len(stage.kind) + 1
    aligned: list[str] = []
    for i, branch in enumerate(stage.branches):
        at = start if i == 0 else start + 2
        inner = _lay_sequence(branch, at, at, width, len(end) + tail if i == last else 0)
        inner[0] = f"{stage.kind}(" + inner[0] if i == 0 else " " * start + "| " + inner[0]
        aligned.extend(inner)
    aligned[-1] += end
    # hanging: `concat(` alone, the branches from four columns after the `>` of the sequence around it
    lead = cont + 4
    hanging = [f"{stage.kind}("]
    for i, branch in enumerate(stage.branches):
        inner = _lay_sequence(branch, lead, lead, width, len(end) + tail if i == last else 0)
        inner[0] = (" " * lead if i == 0 else " " * (lead - 2) + "| ") + inner[0]
        hanging.extend(inner)
    hanging[-1] += end
    return _best([aligned, hanging], col, width, tail)


def _lay_call(stage: Layer, col: int, cont: int, width: int, tail: int = 0) -> list[str]:
    """A layer too long for its line, broken after the commas of its arguments (new lines inside
    parentheses are ignored), continued under its first argument or four columns after `cont`."""
    text = _inline(stage)
    if "(" not in text:
        return [text]
    name, _, rest = text.partition("(")
    body, _, after = rest.rpartition(")")
    parts = [p.strip() for p in _split_args(body)]
    options = []
    for inner in (col + len(name) + 1, cont + 4):
        lines = [name + "("]
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            piece = part + (")" + after if last else ",")
            current = len(lines[-1]) + (col if len(lines) == 1 else 0)
            if i > 0 and current + 1 + len(piece) + (tail if last else 0) > width:
                lines.append(" " * inner + piece)
            else:
                lines[-1] += (" " if i > 0 else "") + piece
        options.append(lines)
    return _best(options, col, width, tail)


def _split_args(text: str) -> list[str]:
    """`a, f(b, c), d` as its top-level parts."""
    parts, depth, last = [], 0, 0
    for i, char in enumerate(text):
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[last:i])
            last = i + 1
    return parts + [text[last:]]


def _lay_sequence(stages, col: int, cont: int, width: int, tail: int = 0) -> list[str]:
    """The stages joined by ` > ` from column `col` on, followed by `tail` characters; a stage that does not
    fit on the line starts the next, after `> ` at column `cont`."""
    lines = [""]
    current = col
    for i, stage in enumerate(stages):
        after = tail if i == len(stages) - 1 else 0
        joint = "" if i == 0 else " > "
        text = _inline(stage)
        if i > 0 and current + len(joint) + len(text) + after > width:
            lines.append(" " * cont + "> ")
            current, joint = cont + 2, ""
        parts = _lay(stage, current + len(joint), cont, width, after)
        lines[-1] += joint + parts[0]
        lines.extend(parts[1:])
        # the first line is written from column `col` on; the others carry their indentation
        current = len(lines[-1]) + (col if len(lines) == 1 else 0)
    return lines


def _lay_body(stages, col: int, width: int) -> list[str]:
    """A sequence written from column `col` on at the top level of a statement (a `def`'s body, a line of
    the network): continued under its first stage, or, where that is too narrow, after `  > `."""
    return _best([_lay_sequence(stages, col, col, width), _lay_sequence(stages, col, 2, width)], col, width)


def _lines(stages: list, width: int) -> list[list]:
    """The network's stages by line: consecutive stages of one module that is not a plain container
    (a stem, a block written out) share a line where it is short enough; the others have one each."""

    def owner(stage):
        return next((entry[0] for entry in _prefix(stage) if not entry[2]), None)

    lines: list[list] = []
    previous = None
    for stage in stages:
        key = owner(stage)
        if lines and key is not None and key == previous and 4 + len(_sequence(lines[-1] + [stage])) <= width:
            lines[-1].append(stage)
        else:
            lines.append([stage])
        previous = key
    return lines


def _render(statements: list[str], defines: list, network: list) -> str:
    """The program, its lines broken at WIDTH."""
    out = list(statements)
    for define in defines:
        head = f"def {define.name}" + (f"({', '.join(define.params)})" if define.params else "") + " = "
        laid = _lay_body(define.stages, len(head), WIDTH)
        out += [head + laid[0]] + laid[1:]
    first, *rest = _lines(network, WIDTH)
    out += _lay_sequence(first, 0, 2, WIDTH)
    for line in rest:
        laid = _lay_body(line, 4, WIDTH)
        out += ["  > " + laid[0]] + laid[1:]
    return "\n".join(out) + "\n"


def _fits(text: str) -> bool:
    return all(len(line) <= WIDTH for line in text.splitlines())


# ---- the pass ---------------------------------------------------------------------------------------------


def _counts(network) -> tuple:
    """Every total (as a formula: a program may leave sizes free), the output shape, and the values no count
    depends on (a drop probability, a slope), layer by layer: a block's parameter may carry those too."""
    from ..core.quantities import QUANTITIES
    from ..kinds.activations import ActivationOptions

    totals = tuple(expansion.expand(network.quantity(q.name) or 0) for q in QUANTITIES if q.totalled or q.network)
    values = tuple(
        (lc.layer.name, lc.layer.options.value)
        for lc in network.layers
        if isinstance(lc.layer.options, ActivationOptions) and lc.layer.options.value is not None
    )
    return totals, tuple(expansion.expand(d) for d in network.output_shape.dims()), values


def flatten(text: str) -> str:
    """The program with its blocks inlined and its numeric repeats unrolled: one stage after another, as
    `paramsym import --flat` writes a traced model (with `->c` where the layer before gives the channels)."""
    from ..model.network import parse

    network = parse(text)
    reader = _Reader(network.program, [lc.layer for lc in network.layers])
    stages = reader.stages(network.program.network.stages, {})
    lets = [f"let {s.name} = {_expr(s.value)}\n" for s in network.program.statements if isinstance(s, Let)]
    return "".join(lets) + "\n  > ".join(_inline(s) for s in stages) + "\n"


def fitted(text: str, network=None) -> str:
    """The program `text` in lines of at most WIDTH columns: itself when it fits already; otherwise each line of
    its network too long broken at `>` and `|` (and between a layer's arguments) where it does not fit, the
    others as they are; itself again if that would count anything differently. `network`: `text` built."""
    from ..model.network import parse

    laid = _broken(text)
    if laid == text:
        return text
    try:
        if _counts(parse(laid)) == _counts(network if network is not None else parse(text)):
            return laid
    except ParamsymError:
        pass
    return text


def _broken(text: str) -> str:
    """`fitted`, unchecked: the network's lines too long broken (the text itself when they all fit, or when the
    network does not start a line)."""
    if _fits(text):
        return text
    try:
        program = parse_program(text)
    except ParamsymError:
        return text
    stages = program.network.stages
    if not stages or stages[0].pos.column != 1:
        return text  # the network does not start a line: written by hand, left as it is
    reader = _Reader(program, [], inline=False)
    lines: dict = {}
    for stage in stages:  # the stages as the text groups them, line by line
        lines.setdefault(stage.pos.line, []).extend(reader.stage(stage, {}))
    first, *rest = lines.values()
    out = text.splitlines()[: stages[0].pos.line - 1] + _lay_sequence(first, 0, 2, WIDTH)
    for line in rest:
        laid = _lay_body(line, 4, WIDTH)
        out += ["  > " + laid[0]] + laid[1:]
    return "\n".join(out) + "\n"


def readable(text: str, skeleton: str | None = None, stacks: dict | None = None) -> str:
    """The program `text` with its repeated structure as `def` blocks and `(SEQ) * n`; `skeleton` is the
    same program with each layer written as `_` + the name of its torch.fx node, and `stacks` the modules
    around each node (`module_stacks`): they name the blocks and say where each ends. Every line fits WIDTH
    columns wherever the language can break it. The result counts exactly what `text` counts (every total,
    the output shape and every value no count depends on), and has no more lines than `text` written in
    lines of WIDTH (`fitted`); otherwise it is that."""
    from ..model.network import parse

    flat = parse(text)
    try:
        result = factored(flat, skeleton, stacks)
        lines = result.count("\n")  # `_broken(text)` has at least the lines of `text`
        shorter = lines <= text.count("\n") or lines <= _broken(text).count("\n")
        if shorter and _counts(parse(result)) == _counts(flat):
            return result
    except ParamsymError:
        pass
    return fitted(text, flat)


def factored(flat, skeleton: str | None = None, stacks: dict | None = None) -> str:
    """The factored program of the built network `flat`, unchecked (`readable` checks it); the program
    as written (its lines too long broken, as `fitted` breaks them) when nothing in it recurs."""
    program = flat.program
    reader = _Reader(program, [lc.layer for lc in flat.layers])
    stages = reader.stages(program.network.stages, {})
    if skeleton is not None and stacks:
        marked = parse_program(skeleton)
        stages = _attach(stages, tuple(_Reader(marked, []).stages(marked.network.stages, {})), stacks)
    reserved = {str(s) for s in flat.symbols} | {s.name for s in program.statements}
    reserved |= {
        str(v)
        for leaf in (found for s in stages for found in _leaves(s))
        for a in leaf.args
        for v in a.values
        if isinstance(v, sympy.Symbol)
    }
    reserved |= {leaf.alias for s in stages for leaf in _leaves(s) if leaf.alias}
    head, body = (
        (stages[:1], stages[1:])
        if stages and isinstance(stages[0], Layer) and stages[0].name == "input"
        else ([], stages)
    )
    defines, network = _Factoring(body, reserved).run()
    for define in defines:
        define.stages = _runs(define.body())
    network = head + _runs(network)
    lets = [f"let {s.name} = {_expr(s.value)}" for s in program.statements if isinstance(s, Let)]
    if not defines and _repeats(network) == _repeats(stages):
        # nothing recurs: the program as it was written, its lines too long broken
        return _broken(flat.source)
    return _render(lets, defines, network)
