"""Semantic checks and translation of an AQL syntax tree into one SQLite statement.

The main search becomes ``SELECT ... FROM events AS t0 WHERE t0.starttime BETWEEN :start AND :stop AND
(<where>) ...`` so the time clause is an indexed range on ``events(starttime)``. AQL functions become
calls of the ``aql_*`` SQLite functions registered by :class:`devconsole.aql.functions.Runtime`;
INOFFENSE becomes an ``IN`` over ``offense_events``; literals are always bound parameters.

Problems are collected (not raised one by one) so ``validate`` can report all of them; each names the
problem and its line and column.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from devconsole.aql import ast, javaregex, timefmt
from devconsole.aql.errors import AqlError
from devconsole.aql.functions import compile_text_search, like_to_glob, parse_network

# Ariel event fields this console stores, in SELECT * order, with their value kinds.
EVENT_FIELDS: dict[str, str] = {
    "starttime": "num",
    "endtime": "num",
    "devicetime": "num",
    "qid": "num",
    "category": "num",
    "highlevelcategory": "num",
    "logsourceid": "num",
    "devicetype": "num",
    "username": "str",
    "sourceip": "str",
    "destinationip": "str",
    "magnitude": "num",
    "severity": "num",
    "credibility": "num",
    "relevance": "num",
    "eventcount": "num",
    "payload": "bytes",
}
# Ariel event fields computed rather than stored (not part of SELECT *). The cloud audit logs this console
# ingests carry no ports, protocol or identity address: those read as QRadar shows an unset value.
VIRTUAL_EVENT_FIELDS: dict[str, tuple[str, str]] = {
    "domainid": ("0", "num"),  # a single-domain console
    "hasoffense": ("EXISTS (SELECT 1 FROM offense_events WHERE offense_events.event_id = {t}.id)", "bool"),
    "isunparsed": ("0", "bool"),  # only parsed events are stored
    "sourceport": ("0", "num"),
    "destinationport": ("0", "num"),
    "protocolid": ("NULL", "num"),
    "identityip": ("NULL", "str"),
    "eventdirection": ("aql_eventdirection({t}.sourceip, {t}.destinationip)", "str"),
    # the ids of the rules whose offenses this event contributed to (a JSON array; NULL when none)
    "creeventlist": (
        "(SELECT NULLIF(json_group_array(DISTINCT json_extract(r.value, '$.id')), '[]')"
        " FROM offense_events oe JOIN offenses o ON o.id = oe.offense_id,"
        " json_each(CASE WHEN json_valid(o.rules) THEN o.rules ELSE '[]' END) AS r"
        " WHERE oe.event_id = {t}.id)",
        "list",
    ),
}
# The flows database exists but this console never records flows: it is always empty.
FLOW_FIELDS: dict[str, str] = {
    "starttime": "num",
    "endtime": "num",
    "firstpackettime": "num",
    "lastpackettime": "num",
    "sourceip": "str",
    "destinationip": "str",
    "sourceport": "num",
    "destinationport": "num",
    "protocolid": "num",
    "sourcebytes": "num",
    "destinationbytes": "num",
    "sourcepackets": "num",
    "destinationpackets": "num",
    "qid": "num",
    "category": "num",
}
DATABASES = ("events", "flows")
# PARAMETERS taking a number: name -> (lowest, highest) accepted (the bounds are this console's)
SEARCH_PARAMETERS_NUMERIC: dict[str, tuple[int, int]] = {
    "SNAPSHOTSIZE": (0, 10_000),
    "PROGRESSDETAILSRESOLUTION": (1, 1_000),
}
IN_SUBQUERY_MAX_ROWS = 10_000
MAX_DEPTH = 8
_UNIT_MS = {"MINUTES": 60_000, "HOURS": 3_600_000, "DAYS": 86_400_000}
_INT64 = (-(2**63), 2**63 - 1)

# Hints for names people often write that are not Ariel fields.
_FIELD_HINTS = {
    "logsourcetypeid": "the log source type column is devicetype",
    "logsourcetype": "the log source type column is devicetype; name it with LOGSOURCETYPENAME(devicetype)",
    "eventname": "name events with QIDNAME(qid)",
    "logsourcename": "name log sources with LOGSOURCENAME(logsourceid)",
    "time": "the event time is starttime (epoch ms)",
}

# name -> (min args, max args or None, result kind, SQLite function or None when compiled specially)
SCALAR_FUNCTIONS: dict[str, tuple[int, int | None, str, str | None]] = {
    "QIDNAME": (1, 1, "str", "aql_qidname"),
    "QIDDESCRIPTION": (1, 1, "str", "aql_qiddescription"),
    "CATEGORYNAME": (1, 1, "str", "aql_categoryname"),
    "LOGSOURCENAME": (1, 1, "str", "aql_logsourcename"),
    "LOGSOURCETYPENAME": (1, 1, "str", "aql_logsourcetypename"),
    "DATEFORMAT": (2, 2, "str", "aql_dateformat"),
    "NOW": (0, 0, "num", None),
    "PARSEDATETIME": (1, 1, "num", None),
    "LOWER": (1, 1, "str", "aql_lower"),
    "UPPER": (1, 1, "str", "aql_upper"),
    "STR": (1, 1, "str", "aql_str"),
    "LONG": (1, 1, "num", "aql_long"),
    "DOUBLE": (1, 1, "num", "aql_double"),
    "UTF8": (1, 1, "str", "aql_utf8"),
    "BASE64": (1, 1, "str", "aql_base64"),
    "STRLEN": (1, 1, "num", "aql_strlen"),
    "CONCAT": (1, None, "str", "aql_concat"),
    "REFERENCESETCONTAINS": (2, 2, "bool", None),
    "REFERENCEMAP": (2, 3, "str", None),
    "REFERENCEMAPSETCONTAINS": (3, 3, "bool", None),
    "REFERENCETABLE": (3, 4, "any", None),
    "INOFFENSE": (1, 1, "bool", None),
    "INCIDR": (2, 2, "bool", None),
    "RULENAME": (1, 1, "str", "aql_rulename"),
    "PROTOCOLNAME": (1, 1, "str", "aql_protocolname"),
}
FUNCTION_ALIASES = {"QIDESCRIPTION": "QIDDESCRIPTION"}
# reference data functions -> (SQLite function, result kind); their first argument names the collection
_REFERENCE_FUNCTIONS = {
    "REFERENCESETCONTAINS": ("aql_refsetcontains", "bool"),
    "REFERENCEMAP": ("aql_referencemap", "any"),
    "REFERENCEMAPSETCONTAINS": ("aql_refmapsetcontains", "bool"),
    "REFERENCETABLE": ("aql_referencetable", "any"),
}
# name-lookup functions -> (config table, id column, name column), as read by functions.Runtime
_LOOKUP_TABLES = {
    "QIDNAME": ("qid_records", "qid", "name"),
    "QIDDESCRIPTION": ("qid_records", "qid", "description"),
    "CATEGORYNAME": ("categories", "id", "name"),
    "LOGSOURCENAME": ("log_sources", "id", "name"),
    "LOGSOURCETYPENAME": ("log_source_types", "id", "name"),
}  # IBM's function list spells it this way
AGGREGATES = ("COUNT", "SUM", "MIN", "MAX", "AVG", "UNIQUECOUNT", "FIRST", "LAST")
# QRadar functions this console does not implement: a clear "not supported" instead of "unknown".
UNSUPPORTED_FUNCTIONS = (
    "LOGSOURCEGROUPNAME",
    "REFERENCEMAPCONTAINS",
    "SUBSTRING",
    "STRPOS",
    "REPLACEALL",
    "REPLACEFIRST",
    "COALESCE",
    "NETWORKNAME",
    "ASSETHOSTNAME",
    "ASSETPROPERTY",
    "GEO",
    "APPLICATIONNAME",
    "HOSTNAME",
    "MATCHESASSETSEARCH",
    "DOMAINNAME",
    "TEXT",
)


@dataclass
class Expr:
    sql: str
    kind: str  # num | str | bool | bytes | any
    agg: bool = False


@dataclass
class Column:
    name: str
    sql: str
    kind: str


@dataclass
class Scope:
    database: str  # events | flows | subquery
    alias: str
    columns: dict[str, Column]
    star: list[Column]
    properties: dict[str, tuple[str, str]] = field(default_factory=dict)  # lower -> (name, value_type)


@dataclass
class _Item:
    name: str
    alias: str | None
    node: ast.Node
    expr: Expr


@dataclass
class CompiledQuery:
    sql: str
    columns: list[str]
    kinds: list[str]
    start_ms: int
    stop_ms: int
    is_aggregate: bool
    database: str
    has_time_clause: bool
    into: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


def _sanitize(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_")


def column_name(node: ast.Node, scope: Scope) -> str:
    """The result key of an unaliased SELECT expression.

    Fields keep their own name. A function is named ``<lowercase function>_<arguments>`` with every run
    of non-alphanumeric characters in the argument text replaced by ``_`` -- QRadar's ``qidname_qid`` and
    ``logsourcename_logsourceid`` are seen in real Ariel results; the rule for several or nested
    arguments is UNCONFIRMED. Other expressions use their sanitized text (UNCONFIRMED).
    """
    if isinstance(node, ast.Field):
        col = scope.columns.get(node.name.lower())
        if col is not None:
            return col.name
        prop = scope.properties.get(node.name.lower())
        return prop[0] if prop else node.name
    if isinstance(node, ast.Func):
        args = "_".join(filter(None, (_sanitize(a.text) for a in node.args)))
        return f"{node.name.lower()}_{args}" if args else node.name.lower()
    return _sanitize(node.text)


class Compiler:
    def __init__(
        self,
        now_ms: int,
        default_window_ms: int,
        properties: dict[str, tuple[str, str]],
        tz: dt.tzinfo | None,
        minute_granularity: bool,
        log_source_ids: frozenset[int] | None = None,
    ) -> None:
        self.now_ms = now_ms
        # The searching user's security profile: None = every log source.
        self.log_source_ids = log_source_ids
        self.default_window_ms = default_window_ms
        self.properties = properties
        self.tz = tz
        self.minute_granularity = minute_granularity
        self.params: list[Any] = []
        self.errors: list[AqlError] = []
        self.windows: list[tuple[int, int]] = []  # every events range scanned (for progress estimates)
        self._aliases = 0
        self._depth = 0

    # -- helpers ----------------------------------------------------------------------------------
    def param(self, value: Any) -> str:
        # numbered parameters (?NNN) bind by position in O(1); named ones are looked up one by one
        self.params.append(value)
        return f"?{len(self.params)}"

    def error(self, message: str, node: ast.Node | None) -> Expr:
        line, column = (node.line, node.column) if node is not None else (1, 1)
        self.errors.append(AqlError(f"{message} at line {line}, column {column}.", line, column))
        return Expr("NULL", "any")

    def _scope_for_table(self, database: str, alias: str) -> tuple[Scope, str]:
        if database == "events":
            columns = {name: Column(name, f"{alias}.{name}", kind) for name, kind in EVENT_FIELDS.items()}
            star = list(columns.values())
            for name, (sql, kind) in VIRTUAL_EVENT_FIELDS.items():
                columns[name] = Column(name, sql.format(t=alias), kind)
            source = "events"
            if self.log_source_ids is not None:
                # SQLite flattens this subquery, so the starttime index still serves the time range.
                allowed = ",".join(str(int(i)) for i in sorted(self.log_source_ids)) or "NULL"
                source = f"(SELECT * FROM events WHERE logsourceid IN ({allowed}))"
            return Scope("events", alias, columns, star, dict(self.properties)), source
        if database == "unknown":
            return Scope("unknown", alias, {}, []), "(SELECT NULL AS starttime LIMIT 0)"
        nulls = ", ".join(f"NULL AS {name}" for name in FLOW_FIELDS)
        columns = {name: Column(name, f"{alias}.{name}", kind) for name, kind in FLOW_FIELDS.items()}
        return Scope("flows", alias, columns, list(columns.values())), f"(SELECT {nulls} LIMIT 0)"

    # -- queries ----------------------------------------------------------------------------------
    def compile_query(self, query: ast.Query, role: str = "top") -> CompiledQuery:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                self.error("Subqueries are nested too deeply", query)
                return CompiledQuery(
                    "SELECT NULL AS c0",
                    ["column0"],
                    ["any"],
                    self.now_ms,
                    self.now_ms,
                    False,
                    "events",
                    False,
                )
            return self._compile_query(query, role)
        finally:
            self._depth -= 1

    def _compile_query(self, query: ast.Query, role: str) -> CompiledQuery:
        alias = f"t{self._aliases}"
        self._aliases += 1

        if query.subquery is not None:
            inner = self.compile_query(query.subquery, "from")
            columns = {}
            star = []
            for i, (name, kind) in enumerate(zip(inner.columns, inner.kinds, strict=True)):
                col = Column(name, f"{alias}.c{i}", kind)
                columns.setdefault(name.lower(), col)
                star.append(col)
            scope = Scope("subquery", alias, columns, star)
            source = f"({inner.sql})"
            database = inner.database
            start_ms, stop_ms = inner.start_ms, inner.stop_ms
            if query.time is not None:
                self.error(
                    "A time clause cannot follow FROM (<subquery>); put it inside the subquery", query.time
                )
        else:
            database = (query.table or "").lower()
            if database not in DATABASES:
                self.error(
                    f'"{query.table}" is not an Ariel database (this console has: {", ".join(DATABASES)});'
                    " AQL cannot query configuration tables -- use the REST API or the name functions"
                    " such as LOGSOURCETYPENAME(devicetype)",
                    query.table_node,
                )
                database = "unknown"  # its columns are not checked: the database error says it all
            scope, source = self._scope_for_table(database, alias)
            start_ms, stop_ms = self._time_window(query.time)
            if database == "events":
                self.windows.append((start_ms, stop_ms))

        # SELECT list
        items: list[_Item] = []
        for item in query.select:
            if item.expr is None:
                for col in scope.star:
                    node = ast.Field(
                        name=col.name, quoted=False, line=item.line, column=item.column, literal_text=col.name
                    )
                    items.append(_Item(col.name, None, node, Expr(col.sql, col.kind)))
                continue
            expr = self.expr(item.expr, scope, "SELECT")
            name = item.alias if item.alias is not None else column_name(item.expr, scope)
            items.append(_Item(name or f"column{len(items)}", item.alias, item.expr, expr))
        has_star = any(item.expr is None for item in query.select)

        is_aggregate = bool(query.group_by) or any(i.expr.agg for i in items)
        if is_aggregate and has_star:
            self.error("SELECT * cannot be combined with GROUP BY or aggregate functions", query.select[0])

        where_sql = None
        if query.where is not None:
            where = self.expr(query.where, scope, "WHERE")
            self._require_condition(where, query.where, "WHERE")
            where_sql = where.sql

        group_sql = [self._group_item(node, items, scope, has_star) for node in query.group_by]

        having_sql = None
        if query.having is not None:
            aliases = {i.alias.lower(): i.expr for i in items if i.alias}
            having = self.expr(query.having, scope, "HAVING", aliases)
            self._require_condition(having, query.having, "HAVING")
            if not is_aggregate:
                self.error("HAVING needs GROUP BY or an aggregate function in the SELECT list", query.having)
            having_sql = having.sql

        order_sql = []
        for order in query.order_by:
            ref = self._order_item(order.expr, items, scope, has_star)
            order_sql.append(f"{ref} {'DESC' if order.descending else 'ASC'}")

        limit = None
        if query.limit is not None:
            value = query.limit.value
            if not isinstance(value, int) or value < 0 or value > _INT64[1]:
                self.error(f'LIMIT must be a whole number, not "{query.limit.text}"', query.limit)
            else:
                limit = value
        if role == "in":
            limit = IN_SUBQUERY_MAX_ROWS if limit is None else min(limit, IN_SUBQUERY_MAX_ROWS)
            if len(items) != 1:
                self.error(
                    f"A subquery after IN must return exactly one column, not {len(items)}", query.select[0]
                )

        into = query.into.name if query.into is not None else None
        parameters = self._parameters(query.parameters)
        if role != "top":
            if query.into is not None:
                self.error(
                    "INTO can only name the results of the whole search, not of a subquery", query.into
                )
            if query.parameters:
                self.error("PARAMETERS can only be given for the whole search", query.parameters[0])

        names = _unique_names([i.name for i in items])
        select_sql = ", ".join(f"{i.expr.sql} AS c{n}" for n, i in enumerate(items)) or "NULL AS c0"
        sql = f"SELECT {select_sql} FROM {source} AS {alias}"
        conditions = []
        if query.subquery is None:
            conditions.append(f"{alias}.starttime BETWEEN {self.param(start_ms)} AND {self.param(stop_ms)}")
            if scope.database == "events":
                # An event stored late (devconsole.storedelay) is invisible until it is searchable.
                conditions.append(
                    f"({alias}.searchable_at IS NULL OR {alias}.searchable_at <= {self.param(self.now_ms)})"
                )
        if where_sql:
            conditions.append(f"({where_sql})")
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        if group_sql:
            sql += " GROUP BY " + ", ".join(group_sql)
        if having_sql:
            sql += f" HAVING {having_sql}"
        if order_sql:
            sql += " ORDER BY " + ", ".join(order_sql)
        if limit is not None:
            sql += f" LIMIT {limit}"
        return CompiledQuery(
            sql=sql,
            columns=names,
            kinds=[i.expr.kind for i in items],
            start_ms=start_ms,
            stop_ms=stop_ms,
            is_aggregate=is_aggregate,
            database=database,
            has_time_clause=query.time is not None,
            into=into,
            parameters=parameters,
        )

    def _parameters(self, parameters: list[ast.Parameter]) -> dict[str, Any]:
        """``PARAMETERS`` of the search: SNAPSHOTSIZE (rows in the search's ``snapshot``),
        PROGRESSDETAILSRESOLUTION (entries in ``progress_details``), REMOTESERVERS (which Ariel servers
        search; this console is the only one, so it is checked and has no effect)."""
        values: dict[str, Any] = {}
        for parameter in parameters:
            name = parameter.name.upper()
            if parameter.op != "=":
                self.error(f'PARAMETERS needs name=value, not "{parameter.text}"', parameter)
                continue
            if name in values:
                self.error(f"The parameter {parameter.name} is given twice", parameter)
                continue
            value = parameter.value
            if name in SEARCH_PARAMETERS_NUMERIC:
                low, high = SEARCH_PARAMETERS_NUMERIC[name]
                number = value.value if isinstance(value, ast.Literal) and value.kind == "num" else None
                if not isinstance(number, int) or not low <= number <= high:
                    self.error(
                        f"The parameter {parameter.name} needs a whole number from {low} to {high},"
                        f' not "{value.text}"',
                        value,
                    )
                    continue
                values[name] = number
            elif name == "REMOTESERVERS":
                ok = (
                    isinstance(value, ast.Func)
                    and value.name.upper() == "ARIELSERVERS4EPID"
                    and len(value.args) == 1
                    and isinstance(value.args[0], ast.Literal)
                    and value.args[0].kind == "num"
                ) or (isinstance(value, ast.Literal) and value.kind == "str")
                if not ok:
                    self.error(
                        "REMOTESERVERS needs ARIELSERVERS4EPID(<id>) or a quoted server list,"
                        f' not "{value.text}"',
                        value,
                    )
                    continue
                values[name] = value.text
            else:
                known = ", ".join([*SEARCH_PARAMETERS_NUMERIC, "REMOTESERVERS"])
                self.error(f'Unknown search parameter "{parameter.name}" (known: {known})', parameter)
        return values

    def _require_condition(self, expr: Expr, node: ast.Node, clause: str) -> None:
        if expr.kind not in ("bool", "any"):
            self.error(f'{clause} needs a condition, but "{node.text}" is not a boolean expression', node)

    def _select_ref(self, node: ast.Node, items: list[_Item]) -> int | None:
        if isinstance(node, ast.Field):
            for n, item in enumerate(items):
                if item.alias is not None and item.alias.lower() == node.name.lower():
                    return n
        key = ast.structural_key(node)
        for n, item in enumerate(items):
            if ast.structural_key(item.node) == key:
                return n
        return None

    @staticmethod
    def _field_in_select(node: ast.Node, items: list[_Item], has_star: bool, scope: Scope) -> bool:
        if not isinstance(node, ast.Field):
            return False
        name = node.name.lower()
        if has_star and name in {c.name.lower() for c in scope.star}:
            return True
        return any(
            isinstance(sub, ast.Field) and sub.name.lower() == name
            for item in items
            for sub in ast.walk(item.node)
        )

    def _group_item(self, node: ast.Node, items: list[_Item], scope: Scope, has_star: bool) -> str:
        ref = self._select_ref(node, items)
        if ref is not None:
            if items[ref].expr.agg:
                return self.error(f'Cannot GROUP BY the aggregate "{node.text}"', node).sql
            return items[ref].expr.sql
        if self._field_in_select(node, items, has_star, scope):
            return self.expr(node, scope, "GROUP BY").sql
        return self.error(f'GROUP BY column "{node.text}" is not in the SELECT list', node).sql

    def _order_item(self, node: ast.Node, items: list[_Item], scope: Scope, has_star: bool) -> str:
        ref = self._select_ref(node, items)
        if ref is not None:
            return str(ref + 1)
        if self._field_in_select(node, items, has_star, scope):
            return self.expr(node, scope, "ORDER BY").sql
        return self.error(f'ORDER BY column "{node.text}" is not in the SELECT list', node).sql

    # -- time -------------------------------------------------------------------------------------
    def _time_window(self, clause: ast.TimeLast | ast.TimeRange | None) -> tuple[int, int]:
        now = self.now_ms
        if clause is None:
            return now - self.default_window_ms, now
        if isinstance(clause, ast.TimeLast):
            amount = clause.amount.value
            if not isinstance(amount, int) or amount < 1 or amount > 10_000_000:
                self.error(
                    f'LAST needs a whole number of {clause.unit}, not "{clause.amount.text}"', clause.amount
                )
                return now - self.default_window_ms, now
            return now - amount * _UNIT_MS[clause.unit], now
        start = self._time_point(clause.start, "START")
        if start is None:
            return now - self.default_window_ms, now
        if clause.stop is None:
            stop = now
            if self.minute_granularity:
                start -= start % 60_000
        else:
            stop_value = self._time_point(clause.stop, "STOP")
            if stop_value is None:
                return now - self.default_window_ms, now
            if self.minute_granularity:
                start -= start % 60_000
                stop_value -= stop_value % 60_000
            stop = stop_value - 1  # STOP is exclusive: '... 17:00' ends at 16:59:59.999
        if stop < start:
            self.error("The STOP time is not after the START time", clause.stop or clause)
            return now - self.default_window_ms, now
        return start, stop

    def _time_point(self, node: ast.Node, word: str) -> int | None:
        if isinstance(node, ast.Literal) and node.kind == "str":
            try:
                return timefmt.parse_time_literal(node.value, self.tz)
            except (ValueError, OverflowError, OSError):
                self.error(
                    f"Invalid {word} time '{node.value}': use one of {timefmt.FORMAT_NAMES}"
                    " (append Z for UTC) or epoch milliseconds",
                    node,
                )
                return None
        if isinstance(node, ast.Literal) and node.kind == "num":
            if isinstance(node.value, int) and 0 <= node.value <= _INT64[1]:
                return node.value
            self.error(f"Invalid {word} time {node.text}: expected epoch milliseconds", node)
            return None
        if isinstance(node, ast.Func) and node.name.upper() == "NOW" and not node.args:
            return self.now_ms
        if isinstance(node, ast.Func) and node.name.upper() == "PARSEDATETIME":
            value = self._parsedatetime_literal(node)
            return value
        self.error(f"{word} needs a time string, epoch milliseconds or PARSEDATETIME('...')", node)
        return None

    def _parsedatetime_literal(self, node: ast.Func) -> int | None:
        if len(node.args) != 1 or not (isinstance(node.args[0], ast.Literal) and node.args[0].kind == "str"):
            self.error("PARSEDATETIME takes one string such as '1 day ago'", node)
            return None
        text = node.args[0].value
        try:
            return timefmt.parse_datetime_phrase(text, self.now_ms, self.tz)
        except (ValueError, OverflowError, OSError):
            self.error(
                f"PARSEDATETIME cannot read '{text}': use 'now', 'N minutes|hours|days|weeks ago' or"
                f" {timefmt.FORMAT_NAMES}",
                node.args[0],
            )
            return None

    # -- expressions ------------------------------------------------------------------------------
    def expr(
        self,
        node: ast.Node,
        scope: Scope,
        clause: str,
        aliases: dict[str, Expr] | None = None,
        in_aggregate: bool = False,
    ) -> Expr:
        def sub(child: ast.Node) -> Expr:
            return self.expr(child, scope, clause, aliases, in_aggregate)

        if isinstance(node, ast.Literal):
            return self._literal(node)
        if isinstance(node, ast.Field):
            return self._field(node, scope, aliases)
        if isinstance(node, ast.Func):
            return self._function(node, scope, clause, aliases, in_aggregate)
        if isinstance(node, ast.Negate):
            operand = sub(node.operand)
            self._require_number(operand, node.operand, "-")
            return Expr(f"(-{operand.sql})", "num", operand.agg)
        if isinstance(node, ast.Arith):
            left, right = sub(node.left), sub(node.right)
            self._require_number(left, node.left, node.op)
            self._require_number(right, node.right, node.op)
            if node.op == "^":
                sql = f"aql_pow({left.sql}, {right.sql})"
            else:
                sql = f"({left.sql} {node.op} {right.sql})"
            return Expr(sql, "num", left.agg or right.agg)
        if isinstance(node, ast.Compare):
            fast = self._lookup_compare(node, sub)
            if fast is not None:
                return fast
            left, right = sub(node.left), sub(node.right)
            op = "<>" if node.op == "!=" else node.op
            return Expr(f"({left.sql} {op} {right.sql})", "bool", left.agg or right.agg)
        if isinstance(node, ast.Logical):
            operands = [sub(child) for child in node.operands]
            for child, operand in zip(node.operands, operands, strict=True):
                self._require_condition(operand, child, node.op)
            return Expr(_balanced(node.op, [o.sql for o in operands]), "bool", any(o.agg for o in operands))
        if isinstance(node, ast.Not):
            operand = sub(node.operand)
            self._require_condition(operand, node.operand, "NOT")
            return Expr(f"(NOT {operand.sql})", "bool", operand.agg)
        if isinstance(node, ast.Match):
            fast = self._lookup_match(node, sub)
            if fast is not None:
                return fast
            return self._match(node, sub(node.left), node.right, sub)
        if isinstance(node, ast.Between):
            operand, low, high = sub(node.operand), sub(node.low), sub(node.high)
            neg = "NOT " if node.negated else ""
            return Expr(
                f"({operand.sql} {neg}BETWEEN {low.sql} AND {high.sql})",
                "bool",
                operand.agg or low.agg or high.agg,
            )
        if isinstance(node, ast.InList):
            fast = self._lookup_in(node, sub)
            if fast is not None:
                return fast
            operand = sub(node.operand)
            values = [sub(item) for item in node.items]
            neg = "NOT " if node.negated else ""
            return Expr(
                f"({operand.sql} {neg}IN ({', '.join(v.sql for v in values)}))",
                "bool",
                operand.agg or any(v.agg for v in values),
            )
        if isinstance(node, ast.InQuery):
            operand = sub(node.operand)
            inner = self.compile_query(node.query, "in")
            neg = "NOT " if node.negated else ""
            return Expr(f"({operand.sql} {neg}IN ({inner.sql}))", "bool", operand.agg)
        if isinstance(node, ast.IsNull):
            operand = sub(node.operand)
            return Expr(f"({operand.sql} IS {'NOT ' if node.negated else ''}NULL)", "bool", operand.agg)
        if isinstance(node, ast.Case):
            return self._case(node, sub)
        if isinstance(node, ast.TextSearch):
            return self._text_search(node, scope)
        return self.error(f'Unsupported expression "{node.text}"', node)

    def _text_search(self, node: ast.TextSearch, scope: Scope) -> Expr:
        if node.op not in (None, "="):
            return self.error(f"TEXT SEARCH takes a quoted text, not {node.op}", node)
        payload = scope.columns.get("payload")
        if scope.database != "events" or payload is None:
            return self.error("TEXT SEARCH searches event payloads: use it on FROM events", node)
        try:
            compile_text_search(node.terms.value)
        except ValueError as exc:
            return self.error(f"TEXT SEARCH '{node.terms.value}' is not usable: {exc}", node.terms)
        return Expr(f"aql_textsearch({payload.sql}, {self.param(node.terms.value)})", "bool")

    def _literal(self, node: ast.Literal) -> Expr:
        if node.kind == "null":
            return Expr("NULL", "any")
        if node.kind == "bool":
            return Expr("1" if node.value else "0", "bool")
        if node.kind == "num":
            if isinstance(node.value, int) and not _INT64[0] <= node.value <= _INT64[1]:
                return self.error(f"The number {node.text} is out of range", node)
            return Expr(self.param(node.value), "num")
        return Expr(self.param(node.value), "str")

    def _field(self, node: ast.Field, scope: Scope, aliases: dict[str, Expr] | None) -> Expr:
        name = node.name.lower()
        if aliases and name in aliases:
            return aliases[name]
        col = scope.columns.get(name)
        if col is not None:
            return Expr(col.sql, col.kind)
        prop = scope.properties.get(name)
        if prop is not None:
            path = self.param('$."' + prop[0] + '"')
            props = f"{scope.alias}.props"
            return Expr(f"(CASE WHEN json_valid({props}) THEN json_extract({props}, {path}) END)", "any")
        if scope.database == "unknown":
            return Expr("NULL", "any")
        hint = _FIELD_HINTS.get(name)
        where = {"events": "an event field", "flows": "a flow field", "subquery": "a column of the subquery"}
        detail = f"not {where[scope.database]}"
        if scope.database == "events":
            detail += " or a custom property defined on this console"
        if hint:
            detail += f"; {hint}"
        return self.error(f'Unknown column "{node.name}" ({detail})', node)

    def _require_number(self, expr: Expr, node: ast.Node, op: str) -> None:
        if expr.kind in ("str", "bool", "bytes", "list"):
            self.error(f'Operator {op} needs numbers, but "{node.text}" is not numeric', node)

    def _case(self, node: ast.Case, sub) -> Expr:
        parts = ["CASE"]
        agg = False
        if node.operand is not None:
            operand = sub(node.operand)
            parts.append(operand.sql)
            agg = operand.agg
        kinds = set()
        for cond_node, value_node in node.whens:
            cond = sub(cond_node)
            if node.operand is None:
                self._require_condition(cond, cond_node, "WHEN")
            value = sub(value_node)
            parts += ["WHEN", cond.sql, "THEN", value.sql]
            kinds.add(value.kind)
            agg = agg or cond.agg or value.agg
        if node.default is not None:
            default = sub(node.default)
            parts += ["ELSE", default.sql]
            kinds.add(default.kind)
            agg = agg or default.agg
        parts.append("END")
        if len(kinds) > 1:
            kinds.discard("any")  # NULL branches do not change the kind
        return Expr(f"({' '.join(parts)})", kinds.pop() if len(kinds) == 1 else "any", agg)

    # -- conditions on looked-up names ------------------------------------------------------------
    # `QIDNAME(qid) ILIKE '%add user%'` is answered once per search on the small config table, and each
    # event is then checked with an index lookup on its id, instead of a Python call per event:
    #   CASE WHEN qid IN (ids whose name matches) THEN 1 WHEN qid IN (all ids) THEN 0 END
    # The second branch keeps the function's NULL for an unknown id, so NOT (...) behaves the same.
    @staticmethod
    def _lookup_of(node: ast.Node) -> tuple[str, str, str, ast.Node] | None:
        if isinstance(node, ast.Func) and not node.star and len(node.args) == 1:
            name = FUNCTION_ALIASES.get(node.name.upper(), node.name.upper())
            if name in _LOOKUP_TABLES:
                return (*_LOOKUP_TABLES[name], node.args[0])
        return None

    def _lookup_condition(self, lookup: tuple[str, str, str, ast.Node], condition: str, sub) -> Expr:
        table, key, _column, arg_node = lookup
        arg = sub(arg_node)
        sql = (
            f"(CASE WHEN {arg.sql} IN (SELECT {key} FROM {table} WHERE {condition}) THEN 1"
            f" WHEN {arg.sql} IN (SELECT {key} FROM {table}) THEN 0 END)"
        )
        return Expr(sql, "bool", arg.agg)

    @staticmethod
    def _text_literal(node: ast.Node) -> str | None:
        return node.value if isinstance(node, ast.Literal) and node.kind == "str" else None

    def _lookup_match(self, node: ast.Match, sub) -> Expr | None:
        lookup = self._lookup_of(node.left)
        pattern = self._text_literal(node.right)
        if lookup is None or pattern is None or node.op not in ("LIKE", "ILIKE"):
            return None
        column = lookup[2]
        if node.op == "LIKE":
            condition = f"{column} GLOB {self.param(like_to_glob(pattern))}"
        elif pattern.isascii():
            condition = f"lower({column}) GLOB {self.param(like_to_glob(pattern.lower()))}"
        else:
            condition = f"aql_like({column}, {self.param(pattern)}, 1)"
        result = self._lookup_condition(lookup, condition, sub)
        if node.negated:
            result.sql = f"(NOT {result.sql})"
        return result

    def _lookup_compare(self, node: ast.Compare, sub) -> Expr | None:
        if node.op not in ("=", "!="):
            return None
        lookup, value = self._lookup_of(node.left), self._text_literal(node.right)
        if lookup is None or value is None:
            lookup, value = self._lookup_of(node.right), self._text_literal(node.left)
        if lookup is None or value is None:
            return None
        op = "=" if node.op == "=" else "<>"
        return self._lookup_condition(lookup, f"{lookup[2]} {op} {self.param(value)}", sub)

    def _lookup_in(self, node: ast.InList, sub) -> Expr | None:
        lookup = self._lookup_of(node.operand)
        values = [self._text_literal(item) for item in node.items]
        if lookup is None or any(v is None for v in values):
            return None
        neg = "NOT " if node.negated else ""
        params = ", ".join(self.param(v) for v in values)
        return self._lookup_condition(lookup, f"{lookup[2]} {neg}IN ({params})", sub)

    def _match(self, node: ast.Match, left: Expr, right_node: ast.Node, sub) -> Expr:
        ignore_case = node.op in ("ILIKE", "IMATCHES")
        is_text = isinstance(right_node, ast.Literal) and right_node.kind == "str"
        literal = right_node.value if is_text else None
        if node.op in ("LIKE", "ILIKE"):
            if literal is not None and not ignore_case:
                sql = f"({left.sql} GLOB {self.param(like_to_glob(literal))})"
            elif literal is not None and literal.isascii():
                # SQLite's lower() folds ASCII only, which is exact for an ASCII pattern
                sql = f"(lower({left.sql}) GLOB {self.param(like_to_glob(literal.lower()))})"
            else:
                right = sub(right_node)
                sql = f"aql_like({left.sql}, {right.sql}, {int(ignore_case)})"
        else:
            if literal is not None:
                try:
                    javaregex.compile_java_regex(literal, ignore_case)
                except ValueError as exc:
                    return self.error(f"{node.op} pattern '{literal}' is not usable: {exc}", right_node)
                sql = f"aql_matches({left.sql}, {self.param(literal)}, {int(ignore_case)})"
            else:
                right = sub(right_node)
                sql = f"aql_matches({left.sql}, {right.sql}, {int(ignore_case)})"
        if node.negated:
            sql = f"(NOT {sql})"
        return Expr(sql, "bool", left.agg)

    def _function(
        self, node: ast.Func, scope: Scope, clause: str, aliases: dict[str, Expr] | None, in_aggregate: bool
    ) -> Expr:
        name = FUNCTION_ALIASES.get(node.name.upper(), node.name.upper())
        if name in AGGREGATES:
            return self._aggregate(node, name, scope, clause, aliases, in_aggregate)
        if node.star:
            return self.error(f"Only COUNT accepts *, not {node.name}", node)
        spec = SCALAR_FUNCTIONS.get(name)
        if spec is None:
            if name in UNSUPPORTED_FUNCTIONS:
                return self.error(f"Function {node.name} is not supported by the dev console", node)
            return self.error(f'Unknown function "{node.name}"', node)
        low, high, kind, sql_name = spec
        count = len(node.args)
        if count < low or (high is not None and count > high):
            if low == high:
                wanted = f"{low}"
            else:
                wanted = f"{low} to {high}" if high is not None else f"at least {low}"
            plural = "s" if wanted != "1" else ""
            return self.error(f"Function {node.name} takes {wanted} argument{plural}, not {count}", node)
        args = [self.expr(a, scope, clause, aliases, in_aggregate) for a in node.args]
        agg = any(a.agg for a in args)

        if name == "NOW":
            return Expr(self.param(self.now_ms), "num")
        if name == "PARSEDATETIME":
            if isinstance(node.args[0], ast.Literal) and node.args[0].kind == "str":
                value = self._parsedatetime_literal(node)
                return Expr(self.param(value), "num") if value is not None else Expr("NULL", "num")
            return Expr(f"aql_parsedatetime({args[0].sql})", "num", agg)
        if name in _REFERENCE_FUNCTIONS:
            first = node.args[0]
            if not (isinstance(first, ast.Literal) and first.kind == "str"):
                return self.error(
                    f"The first argument of {node.name} must be a quoted reference data name", first
                )
            fn, kind = _REFERENCE_FUNCTIONS[name]
            return Expr(f"{fn}({', '.join(a.sql for a in args)})", kind, agg)
        if name == "INOFFENSE":
            if scope.database != "events":
                return self.error("INOFFENSE can only be used on events", node)
            return Expr(
                f"({scope.alias}.id IN (SELECT offense_events.event_id FROM offense_events"
                f" WHERE offense_events.offense_id = {args[0].sql}))",
                "bool",
                agg,
            )
        if name == "INCIDR":
            first = node.args[0]
            if isinstance(first, ast.Literal) and first.kind == "str":
                try:
                    parse_network(first.value)
                except ValueError:
                    return self.error(
                        f"INCIDR needs a network such as '10.0.0.0/8', not '{first.value}'", first
                    )
            return Expr(f"aql_incidr({args[0].sql}, {args[1].sql})", "bool", agg)
        if name == "DATEFORMAT":
            pattern = node.args[1]
            if isinstance(pattern, ast.Literal) and pattern.kind == "str":
                try:
                    timefmt.compile_java_pattern(pattern.value)
                except ValueError as exc:
                    return self.error(f"DATEFORMAT pattern '{pattern.value}' is invalid: {exc}", pattern)
        return Expr(f"{sql_name}({', '.join(a.sql for a in args)})", kind, agg)

    def _aggregate(
        self,
        node: ast.Func,
        name: str,
        scope: Scope,
        clause: str,
        aliases: dict[str, Expr] | None,
        in_aggregate: bool,
    ) -> Expr:
        if clause not in ("SELECT", "HAVING", "ORDER BY"):
            return self.error(f"Aggregate function {node.name} is not allowed in {clause}", node)
        if in_aggregate:
            return self.error(f"Aggregate function {node.name} cannot be nested in another aggregate", node)
        if node.star:
            if name != "COUNT":
                return self.error(f"Only COUNT accepts *, not {node.name}", node)
            return Expr("COUNT(*)", "num", True)
        if len(node.args) != 1:
            return self.error(f"Function {node.name} takes 1 argument, not {len(node.args)}", node)
        arg = self.expr(node.args[0], scope, clause, aliases, in_aggregate=True)
        if name in ("SUM", "AVG"):
            self._require_number(arg, node.args[0], name)
        order_key = f"{scope.alias}.starttime" if scope.database == "events" else "NULL"
        sql = {
            "COUNT": f"COUNT({arg.sql})",
            "SUM": f"SUM({arg.sql})",
            "MIN": f"MIN({arg.sql})",
            "MAX": f"MAX({arg.sql})",
            "AVG": f"AVG({arg.sql})",
            "UNIQUECOUNT": f"COUNT(DISTINCT {arg.sql})",
            "FIRST": f"aql_first({arg.sql}, {order_key})",
            "LAST": f"aql_last({arg.sql}, {order_key})",
        }[name]
        kind = "num" if name in ("COUNT", "SUM", "AVG", "UNIQUECOUNT") else arg.kind
        return Expr(sql, kind, True)


def _balanced(op: str, parts: list[str]) -> str:
    """``a OR b OR c ...`` grouped as a balanced tree: SQLite limits expression depth to 1000, and a long
    generated chain would otherwise nest once per term."""
    if len(parts) == 1:
        return parts[0]
    middle = len(parts) // 2
    return f"({_balanced(op, parts[:middle])} {op} {_balanced(op, parts[middle:])})"


def _unique_names(names: list[str]) -> list[str]:
    """Result keys must be unique: a repeated name gets ``_2``, ``_3``... (QRadar's rule is UNCONFIRMED)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        if name in seen:
            seen[name] += 1
            candidate = f"{name}_{seen[name]}"
            while candidate in seen:
                seen[name] += 1
                candidate = f"{name}_{seen[name]}"
            seen[candidate] = 1
            out.append(candidate)
        else:
            seen[name] = 1
            out.append(name)
    return out
