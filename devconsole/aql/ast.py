"""The AQL syntax tree the parser builds and the compiler checks and translates.

Every node records where it starts in the query (1-based ``line``/``column``) so errors can point
at it, and the exact source ``text`` it was parsed from (used to name unaliased result columns).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_POSITION_FIELDS = frozenset({"line", "column", "span", "source", "literal_text"})


@dataclass(kw_only=True)
class Node:
    line: int = 1
    column: int = 1
    # where the node's text is in the query; sliced on demand (long generated queries would otherwise
    # copy their text once per node)
    span: tuple[int, int] | None = field(default=None, repr=False, compare=False)
    source: str = field(default="", repr=False, compare=False)
    literal_text: str | None = field(default=None, repr=False, compare=False)

    @property
    def text(self) -> str:
        if self.literal_text is not None:
            return self.literal_text
        if self.span is None:
            return ""
        return self.source[self.span[0] : self.span[1]]


@dataclass(kw_only=True)
class Literal(Node):
    value: Any
    kind: str  # 'str' | 'num' | 'null' | 'bool'


@dataclass(kw_only=True)
class Field(Node):
    name: str
    quoted: bool


@dataclass(kw_only=True)
class Func(Node):
    name: str
    args: list[Node]
    star: bool = False  # COUNT(*)


@dataclass(kw_only=True)
class Negate(Node):
    operand: Node


@dataclass(kw_only=True)
class Arith(Node):
    op: str  # + - * / % ^
    left: Node
    right: Node


@dataclass(kw_only=True)
class Compare(Node):
    op: str  # = != <> < <= > >=
    left: Node
    right: Node


@dataclass(kw_only=True)
class Logical(Node):
    op: str  # AND | OR
    operands: list[Node]  # two or more: a chain of the same operator is one node


@dataclass(kw_only=True)
class Not(Node):
    operand: Node


@dataclass(kw_only=True)
class Match(Node):
    op: str  # LIKE | ILIKE | MATCHES | IMATCHES
    negated: bool
    left: Node
    right: Node


@dataclass(kw_only=True)
class Between(Node):
    negated: bool
    operand: Node
    low: Node
    high: Node


@dataclass(kw_only=True)
class InList(Node):
    negated: bool
    operand: Node
    items: list[Node]


@dataclass(kw_only=True)
class InQuery(Node):
    negated: bool
    operand: Node
    query: Query


@dataclass(kw_only=True)
class IsNull(Node):
    negated: bool
    operand: Node


@dataclass(kw_only=True)
class TextSearch(Node):
    """``TEXT SEARCH 'terms'``: a full-text search of the event payload."""

    terms: Literal
    op: str | None  # "=" in the `TEXT SEARCH = '...'` spelling, else None


@dataclass(kw_only=True)
class Parameter(Node):
    """One ``PARAMETERS name=value`` entry."""

    name: str
    op: str
    value: Node


@dataclass(kw_only=True)
class Case(Node):
    operand: Node | None
    whens: list[tuple[Node, Node]]
    default: Node | None


@dataclass(kw_only=True)
class SelectItem(Node):
    expr: Node | None  # None for `*`
    alias: str | None = None


@dataclass(kw_only=True)
class OrderItem(Node):
    expr: Node
    descending: bool = False


@dataclass(kw_only=True)
class TimeLast(Node):
    amount: Literal
    unit: str  # MINUTES | HOURS | DAYS


@dataclass(kw_only=True)
class TimeRange(Node):
    start: Node
    stop: Node | None


@dataclass(kw_only=True)
class Query(Node):
    select: list[SelectItem]
    table: str | None  # database name, or None when selecting from a subquery
    table_node: Node
    subquery: Query | None = None
    where: Node | None = None
    group_by: list[Node] = field(default_factory=list)
    having: Node | None = None
    order_by: list[OrderItem] = field(default_factory=list)
    limit: Literal | None = None
    time: TimeLast | TimeRange | None = None
    into: Field | None = None  # INTO <name>: the search id to store the results under
    parameters: list[Parameter] = field(default_factory=list)


def structural_key(node: Node | None) -> Any:
    """A hashable key equal for expressions that mean the same (names compared case-insensitively)."""
    if node is None:
        return None
    if isinstance(node, Literal):
        return ("lit", node.kind, node.value)
    if isinstance(node, Field):
        return ("field", node.name.lower())
    if isinstance(node, Func):
        return ("func", node.name.lower(), node.star, tuple(structural_key(a) for a in node.args))
    parts: list[Any] = [type(node).__name__]
    for name, value in vars(node).items():
        if name in _POSITION_FIELDS:
            continue
        if isinstance(value, Node):
            parts.append(structural_key(value))
        elif isinstance(value, list):
            parts.append(
                tuple(
                    tuple(structural_key(v) for v in item)
                    if isinstance(item, tuple)
                    else structural_key(item)
                    for item in value
                )
            )
        else:
            parts.append(value)
    return tuple(parts)


def walk(node: Node | None, into_subqueries: bool = False):
    """Yield ``node`` and every expression node below it (not into subqueries unless asked)."""
    if node is None:
        return
    yield node
    if isinstance(node, Query):
        if not into_subqueries:
            return
        return
    for name, value in vars(node).items():
        if name in _POSITION_FIELDS:
            continue
        if isinstance(value, Query):
            if into_subqueries:
                yield value
            continue
        if isinstance(value, Node):
            yield from walk(value, into_subqueries)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, tuple):
                    for sub in item:
                        yield from walk(sub, into_subqueries)
                elif isinstance(item, Node):
                    yield from walk(item, into_subqueries)
