"""Post-data on the data sessions: index builds and foreign keys in parallel, never guessed.

pg_dump writes the post-data sorted by kind: constraints and indexes, then their attaches,
statistics, rules, triggers, then foreign keys, policies, grants. Table data does not
change there, so only two things could go wrong when statements overlap: their order (a
foreign key needs its referenced unique index and its tables' rows, an index its table's
rows) and locks (two sessions waiting for each other). The rule that leaves neither to
chance, as pg_restore's own scheduler does for an archive:

- ``classify`` places a statement only when every table it touches is known from its own
  words: ``index`` (CREATE [UNIQUE] INDEX ... ON [ONLY] t, ALTER TABLE [ONLY] t ADD
  CONSTRAINT ... PRIMARY KEY / UNIQUE / EXCLUDE, and CHECK ... NOT VALID, which scans
  nothing) and ``foreign key`` (ALTER TABLE [ONLY] t ADD CONSTRAINT ... FOREIGN KEY ...
  REFERENCES t2). A statement naming anything outside its tables and pg_catalog (a
  function or operator of the dump in an index expression, which could read another
  table), or read under a search_path other than pg_dump's empty one, is not placed: it
  waits for everything in flight, and runs alone on the main session, as every other
  statement does.
- ``TableOrder``: the tables a statement touches, each taken to the root of its partition
  or inheritance tree, decide what it waits for: every COPY into them and every earlier
  statement on them. Statements that share no table may run at once, on any session, as
  soon as what they wait for has ended: a table's indexes are built while other tables
  still load, a foreign key is checked while other tables' indexes are built. Two
  statements running at once never share a table, so no session waits for another's
  lock: no deadlock. Statements on one table run in the dump's order, so the schema is
  the serial restore's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from services import grammar
from services.copy_order import name_at
from services.grammar import Verdict
from services.sqllex import WORD, Statement, Token

INDEX, FOREIGN_KEY = "index", "foreign key"
Table = tuple[str, str]


@dataclass(frozen=True, slots=True)
class PostStatement:
    kind: str  # INDEX or FOREIGN_KEY
    tables: tuple[Table, ...]  # the table it is on, and the referenced one
    label: str  # what a progress line says of it


def _others(toks: list[Token], start: int, own: set[Table]) -> bool:
    """Whether the tokens from ``start`` name anything qualified but ``own`` and
    pg_catalog's (a function, an operator class, a type of the dump)."""
    k = start
    while k < len(toks):
        name, k = name_at(toks, k)
        if name is not None and name not in own and name[0] != "pg_catalog":
            return True
    return False


def classify(stmt: Statement, verdict: Verdict) -> PostStatement | None:
    """The statement's class and tables, or None: it waits and runs on the main session.
    Only under pg_dump's empty search_path (the caller's part): there an unqualified
    function or operator can only be pg_catalog's."""
    if verdict.kind != grammar.DDL or verdict.trigger or verdict.event_trigger:
        return None
    toks = stmt.tokens
    if any(t.kind == WORD and t.value == "operator" for t in toks):
        # OPERATOR(schema.op): an operator of the dump, whose function could read
        # another table; its name is no qualified name to ``_others``.
        return None
    words = stmt.words(3)
    if words[0] == "create" and "index" in words[1:3]:
        k = words.index("index") + 1
        while k < len(toks) and not (toks[k].kind == WORD and toks[k].value == "on"):
            k += 1
        k += 1
        if k < len(toks) and toks[k].kind == WORD and toks[k].value == "only":
            k += 1
        table, after = name_at(toks, k)
        if table is None or _others(toks, after, {table}):
            return None
        return PostStatement(INDEX, (table,), f"index on {table[0]}.{table[1]}")
    if words[:2] != ["alter", "table"]:
        return None
    k = 2
    if k < len(toks) and toks[k].kind == WORD and toks[k].value == "only":
        k += 1
    table, k = name_at(toks, k)
    if table is None or [t.value for t in toks[k : k + 2]] != ["add", "constraint"]:
        return None
    k += 3  # ADD CONSTRAINT name
    if k >= len(toks) or toks[k].kind != WORD:
        return None
    what = toks[k].value
    label = f"{what.replace('primary', 'primary key')} on {table[0]}.{table[1]}"
    if what in ("primary", "unique", "exclude"):
        if _others(toks, k, {table}):
            return None
        return PostStatement(INDEX, (table,), label)
    if what == "check":
        tail = [t.value for t in toks[-3:] if t.value != ";"]
        not_valid = tail[-2:] == ["not", "valid"]
        if not not_valid or _others(toks, k, {table}):
            return None
        return PostStatement(INDEX, (table,), label)
    if what == "foreign":
        ref = next(
            (
                j
                for j in range(k, len(toks))
                if toks[j].kind == WORD and toks[j].value == "references"
            ),
            None,
        )
        if ref is None:
            return None
        referenced, after = name_at(toks, ref + 1)
        if referenced is None or _others(toks, after, {table, referenced}):
            return None
        return PostStatement(
            FOREIGN_KEY, (table, referenced), f"foreign key on {table[0]}.{table[1]}"
        )
    return None


J = TypeVar("J")


def roots_of(tables: Iterable[Table], roots: Callable[[Table], set[Table]]) -> frozenset[Table]:
    """The roots of the partition or inheritance trees the tables are in
    (``roots``: ``services.copy_order.LoadAlone.roots``)."""
    return frozenset(r for t in tables for r in roots(t))


class TableOrder(Generic[J]):
    """What a job on the data sessions must wait for, by the roots of the trees of the
    tables it touches (``roots_of``).

    ``load`` registers a COPY: loads of one table do not wait for each other (COPY locks
    nothing another COPY needs). ``statement`` registers a post-data statement: it waits
    for every load and the last statement registered on any of its roots (the last one
    waited for the ones before it).
    """

    def __init__(self) -> None:
        self._loads: dict[Table, list[J]] = {}
        self._last: dict[Table, J] = {}

    def load(self, job: J, roots: frozenset[Table]) -> list[J]:
        after = [self._last[r] for r in sorted(roots) if r in self._last]
        for r in roots:
            self._loads.setdefault(r, []).append(job)
        return after

    def statement(self, job: J, roots: frozenset[Table]) -> list[J]:
        after: list[J] = []
        for r in sorted(roots):
            after.extend(self._loads.pop(r, ()))
            if r in self._last:
                after.append(self._last[r])
            self._last[r] = job
        return after
