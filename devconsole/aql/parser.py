"""Parse AQL text into the syntax tree of :mod:`devconsole.aql.ast` with lark (LALR, grammar.lark).

Syntax errors are reported the way QRadar's parser words them: ``Encountered "DAYS" at line 1,
column 40.`` followed by what was expected.
"""

from __future__ import annotations

import functools
from pathlib import Path

from lark import Lark, Token, Transformer_NonRecursive, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from devconsole.aql import ast
from devconsole.aql.errors import AqlError

GRAMMAR_PATH = Path(__file__).with_name("grammar.lark")
MAX_QUERY_CHARS = 1_000_000

# How expected terminals read in an error message.
_TERMINAL_NAMES = {
    "NAME": "<identifier>",
    "QNAME": '<"quoted name">',
    "STRING": "<'string'>",
    "NUMBER": "<number>",
    "COMP_OP": "<comparison>",
    "MATCH_OP": "LIKE",
    "TIME_UNIT": "MINUTES|HOURS|DAYS",
    "STAR": '"*"',
    "SLASH": '"/"',
    "PERCENT": '"%"',
    "PLUS": '"+"',
    "MINUS": '"-"',
    "CARET": '"^"',
    "LPAR": '"("',
    "RPAR": '")"',
    "COMMA": '","',
    "$END": "<EOF>",
}


@functools.cache
def _parser() -> Lark:
    return Lark(
        GRAMMAR_PATH.read_text(),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
    )


def parse(text: str) -> ast.Query:
    """The syntax tree of ``text``; raises :class:`AqlError` for anything that is not AQL."""
    if not isinstance(text, str):
        raise AqlError("The query must be a string", 1, 1)
    if len(text) > MAX_QUERY_CHARS:
        raise AqlError(f"The query is longer than {MAX_QUERY_CHARS} characters", 1, 1)
    try:
        tree = _parser().parse(text)
        return _ToAst(text).transform(tree)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    except AqlError:
        raise
    except RecursionError:
        raise AqlError("The query is nested too deeply", 1, 1) from None
    except LarkError as exc:  # anything else lark reports is still a syntax problem
        raise AqlError(f"Syntax error: {exc}", 1, 1) from None


def _end_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1


def _expected(names: set[str]) -> str:
    readable = sorted({_TERMINAL_NAMES.get(n, n) for n in names if not n.startswith("__")})
    return f" Was expecting one of: {', '.join(readable)}." if readable else ""


def _syntax_error(text: str, exc: UnexpectedInput) -> AqlError:
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        tok = exc.token
        line, column = tok.line or 1, tok.column or 1
        message = f'Encountered "{tok.value}" at line {line}, column {column}.'
        if tok.type == "TIME_UNIT":
            message += (
                f" {tok.value.upper()} is only valid in the time clause at the end of the query"
                f" (LAST n {tok.value.upper()}); in expressions NOW() and time fields are epoch"
                " milliseconds, e.g. starttime > NOW() - 86400000."
            )
        else:
            message += _expected(set(getattr(exc, "accepts", None) or exc.expected))
        return AqlError(message, line, column)
    if isinstance(exc, (UnexpectedToken, UnexpectedEOF)):
        line, column = _end_position(text)
        expected = set(getattr(exc, "accepts", None) or getattr(exc, "expected", ()) or ())
        message = f'Encountered "<EOF>" at line {line}, column {column}.{_expected(expected)}'
        return AqlError(message, line, column)
    if isinstance(exc, UnexpectedCharacters):
        line, column = exc.line, exc.column
        char = exc.char
        if char == "'":
            what = "an unterminated string literal"
        elif char == '"':
            what = "an unterminated quoted name"
        else:
            what = f'"{char}"'
        return AqlError(f"Lexical error at line {line}, column {column}. Encountered: {what}.", line, column)
    return AqlError(f"Syntax error: {exc}", 1, 1)


def _unquote(token: str, quote: str) -> str:
    return token[1:-1].replace(quote * 2, quote)


class _ToAst(Transformer_NonRecursive):
    """lark tree -> :mod:`ast` nodes, each carrying its line, column and source text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def _pos(self, meta) -> dict:
        if getattr(meta, "empty", True):
            return {}
        return {
            "line": meta.line,
            "column": meta.column,
            "span": (meta.start_pos, meta.end_pos),
            "source": self._text,
        }

    def _tok_pos(self, tok: Token) -> dict:
        return {
            "line": tok.line,
            "column": tok.column,
            "span": (tok.start_pos, tok.end_pos),
            "source": self._text,
        }

    def start(self, children):
        return children[0]

    @v_args(meta=True)
    def query(self, meta, children):
        select, table, into, where, group, having, order, limit, time, parameters = children
        kind, table_value, table_node = table
        return ast.Query(
            select=select,
            table=table_value if kind == "table" else None,
            table_node=table_node,
            subquery=table_value if kind == "subquery" else None,
            where=where,
            group_by=group or [],
            having=having,
            order_by=order or [],
            limit=limit,
            time=time,
            into=into,
            parameters=parameters or [],
            **self._pos(meta),
        )

    def into_clause(self, children):
        tok = children[1]
        return ast.Field(name=str(tok), quoted=False, **self._tok_pos(tok))

    def parameters_clause(self, children):
        return children[1:]

    @v_args(meta=True)
    def parameter(self, meta, children):
        name, op, value = children
        return ast.Parameter(name=str(name), op=str(op), value=value, **self._pos(meta))

    @v_args(meta=True)
    def text_search(self, meta, children):
        _kw, op, text = children
        return ast.TextSearch(
            terms=self._string(text), op=str(op) if op is not None else None, **self._pos(meta)
        )

    def select_clause(self, children):
        return children[1:]

    def star_item(self, children):
        return ast.SelectItem(expr=None, **self._tok_pos(children[0]))

    @v_args(meta=True)
    def expr_item(self, meta, children):
        expr, _as, alias = children
        return ast.SelectItem(expr=expr, alias=alias, **self._pos(meta))

    def alias(self, children):
        tok = children[0]
        if tok.type == "QNAME":
            return _unquote(tok, '"')
        if tok.type == "STRING":
            return _unquote(tok, "'")
        return str(tok)

    def from_table(self, children):
        tok = children[1]
        name = _unquote(tok, '"') if tok.type == "QNAME" else str(tok)
        return ("table", name, ast.Field(name=name, quoted=tok.type == "QNAME", **self._tok_pos(tok)))

    @v_args(meta=True)
    def from_subquery(self, meta, children):
        return ("subquery", children[1], children[1])

    def where_clause(self, children):
        return children[1]

    def group_clause(self, children):
        return children[2:]

    def having_clause(self, children):
        return children[1]

    def order_clause(self, children):
        return children[2:]

    @v_args(meta=True)
    def order_item(self, meta, children):
        expr, direction = children
        return ast.OrderItem(
            expr=expr, descending=bool(direction) and direction.type == "DESC", **self._pos(meta)
        )

    def limit_clause(self, children):
        return self._number(children[1])

    @v_args(meta=True)
    def time_last(self, meta, children):
        return ast.TimeLast(amount=self._number(children[1]), unit=children[2].upper(), **self._pos(meta))

    @v_args(meta=True)
    def time_range(self, meta, children):
        return ast.TimeRange(start=children[1], stop=children[3], **self._pos(meta))

    def time_point(self, children):
        item = children[0]
        if isinstance(item, Token):
            return self._string(item) if item.type == "STRING" else self._number(item)
        return item

    def _logical(self, op: str, meta, children) -> ast.Logical:
        # a chain `a OR b OR c` becomes one node with three operands (no deep recursion later)
        left, right = children[0], children[2]
        if isinstance(left, ast.Logical) and left.op == op:  # also `(a OR b) OR c`: OR is associative
            left.operands.append(right)  # the chain so far is only referenced here: extend in place
            left.span = (left.span[0] if left.span else meta.start_pos, meta.end_pos)
            return left
        return ast.Logical(op=op, operands=[left, right], **self._pos(meta))

    @v_args(meta=True)
    def or_op(self, meta, children):
        return self._logical("OR", meta, children)

    @v_args(meta=True)
    def and_op(self, meta, children):
        return self._logical("AND", meta, children)

    @v_args(meta=True)
    def not_op(self, meta, children):
        return ast.Not(operand=children[1], **self._pos(meta))

    @v_args(meta=True)
    def compare(self, meta, children):
        op = "!=" if children[1] == "<>" else str(children[1])
        return ast.Compare(op=op, left=children[0], right=children[2], **self._pos(meta))

    @v_args(meta=True)
    def match(self, meta, children):
        left, negated, op, right = children
        return ast.Match(
            op=op.upper(), negated=negated is not None, left=left, right=right, **self._pos(meta)
        )

    @v_args(meta=True)
    def between(self, meta, children):
        operand, negated, _b, low, _and, high = children
        return ast.Between(
            negated=negated is not None, operand=operand, low=low, high=high, **self._pos(meta)
        )

    @v_args(meta=True)
    def in_list(self, meta, children):
        operand, negated, _in, items = children
        return ast.InList(negated=negated is not None, operand=operand, items=items, **self._pos(meta))

    def expr_list(self, children):
        if len(children) == 1:
            return [children[0]]
        children[0].append(children[1])  # extend in place: linear in the list's length
        return children[0]

    @v_args(meta=True)
    def in_query(self, meta, children):
        operand, negated, _in, query = children
        return ast.InQuery(negated=negated is not None, operand=operand, query=query, **self._pos(meta))

    @v_args(meta=True)
    def is_null(self, meta, children):
        operand, _is, negated, _null = children
        return ast.IsNull(negated=negated is not None, operand=operand, **self._pos(meta))

    @v_args(meta=True)
    def arith(self, meta, children):
        return ast.Arith(op=str(children[1]), left=children[0], right=children[2], **self._pos(meta))

    @v_args(meta=True)
    def negate(self, meta, children):
        operand = children[1]
        if isinstance(operand, ast.Literal) and operand.kind == "num":
            return ast.Literal(value=-operand.value, kind="num", **self._pos(meta))
        return ast.Negate(operand=operand, **self._pos(meta))

    def unary_plus(self, children):
        return children[1]

    def field(self, children):
        tok = children[0]
        if tok.type == "QNAME":
            return ast.Field(name=_unquote(tok, '"'), quoted=True, **self._tok_pos(tok))
        return ast.Field(name=str(tok), quoted=False, **self._tok_pos(tok))

    @v_args(meta=True)
    def func_call(self, meta, children):
        name, *args = children
        args = [a for a in args if a is not None]
        star = bool(args) and isinstance(args[0], Token) and args[0].type == "STAR"
        return ast.Func(name=str(name), args=[] if star else args, star=star, **self._pos(meta))

    @v_args(meta=True)
    def case_expr(self, meta, children):
        operand = children[1]
        whens = [c for c in children[2:] if isinstance(c, tuple)]
        rest = [c for c in children[2:] if c is not None and not isinstance(c, (tuple, Token))]
        default = rest[0] if rest else None
        return ast.Case(operand=operand, whens=whens, default=default, **self._pos(meta))

    def when_clause(self, children):
        return (children[1], children[3])

    def string(self, children):
        return self._string(children[0])

    def number(self, children):
        return self._number(children[0])

    def null(self, children):
        return ast.Literal(value=None, kind="null", **self._tok_pos(children[0]))

    def true(self, children):
        return ast.Literal(value=True, kind="bool", **self._tok_pos(children[0]))

    def false(self, children):
        return ast.Literal(value=False, kind="bool", **self._tok_pos(children[0]))

    def _string(self, tok: Token) -> ast.Literal:
        return ast.Literal(value=_unquote(tok, "'"), kind="str", **self._tok_pos(tok))

    def _number(self, tok: Token) -> ast.Literal:
        text = str(tok)
        if text[:2].lower() == "0x":
            value: int | float = int(text, 16)
        elif any(c in text for c in ".eE"):
            value = float(text)
        else:
            value = int(text)
        return ast.Literal(value=value, kind="num", **self._tok_pos(tok))
