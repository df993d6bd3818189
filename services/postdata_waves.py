"""Post-data in waves: index builds and foreign keys on several sessions, never guessed.

pg_dump writes the post-data sorted by kind: constraints and indexes, then their attaches,
statistics, rules, triggers, then foreign keys, policies, grants. Table data does not
change there, so only two things could go wrong when statements overlap: their order (a
foreign key needs its referenced unique index, an ATTACH both indexes) and locks (two
sessions waiting for each other). The rule that leaves neither to chance:

- Consecutive statements of one class form a wave; any other statement (or one this
  module cannot place) waits for the wave to end and runs on the main session. The
  classes: ``index`` (CREATE [UNIQUE] INDEX ... ON [ONLY] t, ALTER TABLE [ONLY] t ADD
  CONSTRAINT ... PRIMARY KEY / UNIQUE / EXCLUDE, and CHECK ... NOT VALID, which scans
  nothing) and ``foreign key`` (ALTER TABLE [ONLY] t ADD CONSTRAINT ... FOREIGN KEY ...
  REFERENCES t2). A statement naming anything outside its tables and pg_catalog (a
  function of the dump in an index expression, which could read another table) is no
  wave's: it waits, and runs alone.
- Within a wave, the tables a statement touches, each taken to the root of its partition
  or inheritance tree, are joined (union-find); a group goes to one session, where its
  statements run in the dump's order, so sessions touch disjoint sets of tables: no lock
  wait between them, hence no deadlock. A statement joining two groups already on two
  sessions ends the wave (it waits, and a new one begins with it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from services import grammar
from services.copy_order import name_at
from services.grammar import Verdict
from services.sqllex import WORD, Statement, Token

INDEX, FOREIGN_KEY = "index", "foreign key"
Table = tuple[str, str]


@dataclass(frozen=True, slots=True)
class WaveStatement:
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


def classify(stmt: Statement, verdict: Verdict) -> WaveStatement | None:
    """The statement's class and tables, or None: it waits and runs on the main session."""
    if verdict.kind != grammar.DDL or verdict.trigger or verdict.event_trigger:
        return None
    toks = stmt.tokens
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
        return WaveStatement(INDEX, (table,), f"index on {table[0]}.{table[1]}")
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
        return WaveStatement(INDEX, (table,), label)
    if what == "check":
        tail = [t.value for t in toks[-3:] if t.value != ";"]
        not_valid = tail[-2:] == ["not", "valid"]
        if not not_valid or _others(toks, k, {table}):
            return None
        return WaveStatement(INDEX, (table,), label)
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
        return WaveStatement(
            FOREIGN_KEY, (table, referenced), f"foreign key on {table[0]}.{table[1]}"
        )
    return None


class Wave:
    """One wave: which session each group of tables went to."""

    def __init__(self, kind: str, sessions: int, roots: Callable[[Table], set[Table]]) -> None:
        self.kind = kind
        self._sessions = sessions
        self._roots = roots
        self._parent: dict[Table, Table] = {}
        self._lane: dict[Table, int] = {}  # a group's root -> its session
        self._load = [0] * sessions  # statements given to each session

    def _find(self, t: Table) -> Table:
        while self._parent.get(t, t) != t:
            t = self._parent[t]
        return t

    def place(self, statement: WaveStatement) -> int | None:
        """The session (0-based) the statement goes to, or None when it joins groups
        already on different sessions (the wave must end first)."""
        groups = {self._find(r) for t in statement.tables for r in self._roots(t)}
        lanes = {self._lane[g] for g in groups if g in self._lane}
        if len(lanes) > 1:
            return None
        lane = lanes.pop() if lanes else self._load.index(min(self._load))
        first, *rest = sorted(groups)
        for g in rest:
            self._parent[g] = first
        self._lane[first] = lane
        self._load[lane] += 1
        return lane
