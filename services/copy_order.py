"""What a parallel data load may reorder, decided from the grammar's verdicts, never guessed.

With ``--jobs N`` the COPY blocks of a database section load on data sessions of their
own while the main session goes on with the dump in its order. Three questions decide
what may overlap, and this module answers them:

- Which statement must wait until every COPY in flight has ended (a barrier)?
  Everything but the statements certainly independent of table data: the session's own
  settings (``SESSION``: SET, ``set_config('search_path')``, BEGIN/COMMIT around large
  objects, SET/RESET SESSION AUTHORIZATION) and the catalog calls (``CATALOG_CALL``:
  ``setval``, ``lo_create``/``lo_open``/``lowrite``/``lo_close``). A DDL statement, a
  database statement, anything else: a barrier.
- What must a data session run before its COPY? The settings the main session was given
  since its ``\\connect``, in their order (``SessionLog``), so the COPY reads its bytes in
  the same client_encoding, as the same role, with the same search_path as it would have
  on the main session. ``replay`` leaves out what the data session has already and a
  setting set again later; ``client_encoding`` is never left out, because the bytes of
  the statements after it are in it.
- Which tables must load alone (a barrier before and after their COPY)? Those whose rows
  could call a function of the dump that may read another table while loading: a CHECK,
  a generated column or a partition key naming anything outside ``pg_catalog``, a column
  of a domain or type whose CHECK does, and their partitions and children (``LoadAlone``).
  Under any search_path but pg_dump's empty one every such expression counts. Triggers,
  indexes and foreign keys come after the data in pg_dump's order (``services.dump``
  refuses data after a trigger), so they are no question here.
"""

from __future__ import annotations

from dataclasses import dataclass

from services import grammar
from services.grammar import Verdict
from services.sqllex import PUNCT, QIDENT, WORD, Statement, Token

INDEPENDENT_KINDS = frozenset({grammar.SESSION, grammar.CATALOG_CALL})
_TRANSACTION = frozenset({"begin", "commit"})


def waits_for_data(verdict: Verdict) -> bool:
    """Whether a statement sent on the main session must wait for the COPYs in flight."""
    return verdict.kind not in INDEPENDENT_KINDS


@dataclass(frozen=True, slots=True)
class SessionStatement:
    name: str  # the setting (session_authorization for SET/RESET SESSION AUTHORIZATION)
    sql: bytes
    encoding: str  # the client_encoding its bytes are in
    encoding_after: str | None  # its own client_encoding, when it sets one


class SessionLog:
    """The settings statements sent on the main session since its ``\\connect``."""

    def __init__(self) -> None:
        self.entries: list[SessionStatement] = []

    def reset(self) -> None:
        # A new list: a data session still holding the old one reads only its own part.
        self.entries = []

    def record(self, verdict: Verdict, sql: bytes, encoding: str) -> None:
        if verdict.kind != grammar.SESSION or verdict.name in _TRANSACTION:
            return
        after = verdict.setting if verdict.name == "client_encoding" else None
        self.entries.append(SessionStatement(verdict.name or "", sql, encoding, after))


def replay(entries: list[SessionStatement], applied: dict[str, bytes]) -> list[SessionStatement]:
    """What a data session that ran ``applied`` (setting -> statement) must run of
    ``entries`` (the log's part it has not seen) to stand where the main session stood."""
    last = {e.name: i for i, e in enumerate(entries)}
    out = []
    for i, e in enumerate(entries):
        if e.name != "client_encoding" and last[e.name] != i:
            continue  # set again later in the part
        if applied.get(e.name) == e.sql:
            continue
        out.append(e)
    return out


# --- tables that load alone -----------------------------------------------------------------
def name_at(toks: list[Token], k: int) -> tuple[tuple[str, str] | None, int]:
    """A qualified name ``a.b`` at ``toks[k]`` (else None) and the index after it."""
    if (
        k + 2 < len(toks)
        and toks[k].kind in (WORD, QIDENT)
        and toks[k + 1].kind == PUNCT
        and toks[k + 1].value == "."
        and toks[k + 2].kind in (WORD, QIDENT)
    ):
        return (toks[k].value, toks[k + 2].value), k + 3
    return None, k + 1


def _group(toks: list[Token], k: int) -> list[Token]:
    """The tokens of the parenthesized group opening at ``toks[k]`` ([] if none opens)."""
    if k >= len(toks) or toks[k].value != "(":
        return []
    depth = toks[k].depth
    end = k + 1
    while end < len(toks) and not (toks[end].value == ")" and toks[end].depth == depth):
        end += 1
    return toks[k : end + 1]


def _expressions(toks: list[Token]) -> list[list[Token]]:
    """The CHECK, GENERATED ... AS and PARTITION BY expressions of a statement."""
    out = []
    for k, tok in enumerate(toks):
        if tok.kind != WORD:
            continue
        if tok.value == "check":
            out.append(_group(toks, k + 1))
        elif k + 2 < len(toks) and (
            (tok.value == "generated" and toks[k + 2].value == "as")  # GENERATED ALWAYS AS (
            or (tok.value == "partition" and toks[k + 1].value == "by")  # PARTITION BY RANGE (
        ):
            out.append(_group(toks, k + 3))
    return [g for g in out if g]


def _names(toks: list[Token]) -> set[tuple[str, str]]:
    names = set()
    k = 0
    while k < len(toks):
        name, k = name_at(toks, k)
        if name is not None:
            names.add(name)
    return names


class LoadAlone:
    """Follows one database section's DDL; ``alone(schema, table)`` says whether that
    table's COPY must run with no other COPY in flight."""

    def __init__(self) -> None:
        self._hot_types: set[tuple[str, str]] = set()
        self._alone: set[tuple[str, str]] = set()
        self._children: dict[tuple[str, str], set[tuple[str, str]]] = {}
        self._up: dict[tuple[str, str], set[tuple[str, str]]] = {}

    def see(self, stmt: Statement, verdict: Verdict, *, path_empty: bool) -> None:
        if verdict.kind != grammar.DDL:
            return
        toks = stmt.tokens
        words = stmt.words(4)
        hot = self._calls_out(toks, path_empty) or bool(_names(toks) & self._hot_types)
        if words[0] == "create" and ("domain" in words[1:3] or "type" in words[1:3]):
            k = words.index("domain") if "domain" in words else words.index("type")
            name, _ = name_at(toks, k + 1)
            if name is not None and hot:
                self._hot_types.add(name)
            return
        if words[:2] == ["alter", "domain"]:
            name, _ = name_at(toks, 2)
            if name is not None and hot:
                self._hot_types.add(name)
            return
        table = verdict.table
        if words[0] == "alter" and "table" in words[1:3]:
            table = self._altered(toks)
        if table is None:
            return
        for parent in self._parents(toks):
            self._link(parent, table)
        attached = self._attached(toks)
        if attached is not None:
            self._link(table, attached)
        if hot:
            self._alone.add(table)

    def _link(self, parent: tuple[str, str], child: tuple[str, str]) -> None:
        self._children.setdefault(parent, set()).add(child)
        self._up.setdefault(child, set()).add(parent)

    def roots(self, table: tuple[str, str]) -> set[tuple[str, str]]:
        """The roots of the partition or inheritance trees ``table`` is in (itself
        when it is in none)."""
        out: set[tuple[str, str]] = set()
        seen: set[tuple[str, str]] = set()
        todo = [table]
        while todo:
            t = todo.pop()
            if t in seen:
                continue
            seen.add(t)
            parents = self._up.get(t)
            if parents:
                todo.extend(parents)
            else:
                out.add(t)
        return out

    def alone(self, schema: str, table: str) -> bool:
        """The table, or a partition or child its rows may land in or share checks with."""
        seen: set[tuple[str, str]] = set()
        todo = [(schema, table)]
        while todo:
            t = todo.pop()
            if t in seen:
                continue
            seen.add(t)
            if t in self._alone:
                return True
            todo.extend(self._children.get(t, ()))
        # A parent's CHECK and partition key hold for its children too.
        parents = {p for p, kids in self._children.items() if (schema, table) in kids}
        return any(self.alone(*p) for p in parents if p not in seen)

    @staticmethod
    def _calls_out(toks: list[Token], path_empty: bool) -> bool:
        """An expression naming anything outside pg_catalog (a function, an operator, a
        type, a collation): with search_path '' pg_dump qualifies every such name."""
        for group in _expressions(toks):
            if not path_empty:
                return True
            if any(schema != "pg_catalog" for schema, _ in _names(group)):
                return True
        return False

    @staticmethod
    def _altered(toks: list[Token]) -> tuple[str, str] | None:
        k = 2
        while k < len(toks) and toks[k].kind == WORD and toks[k].value in ("only", "if", "exists"):
            k += 1
        return name_at(toks, k)[0]

    @staticmethod
    def _parents(toks: list[Token]) -> list[tuple[str, str]]:
        """PARTITION OF parent, INHERITS (parents), ALTER TABLE ... INHERIT parent."""
        out: list[tuple[str, str]] = []
        for k, tok in enumerate(toks):
            if tok.kind != WORD:
                continue
            if tok.value == "partition" and k + 1 < len(toks) and toks[k + 1].value == "of":
                name = name_at(toks, k + 2)[0]
                out += [name] if name else []
            elif tok.value == "inherits":
                out += sorted(_names(_group(toks, k + 1)))
            elif tok.value == "inherit" and k > 0 and toks[k - 1].value != "no":
                name = name_at(toks, k + 1)[0]
                out += [name] if name else []
        return out

    @staticmethod
    def _attached(toks: list[Token]) -> tuple[str, str] | None:
        """ALTER TABLE parent ATTACH PARTITION child: the child."""
        for k, tok in enumerate(toks[:-1]):
            if tok.kind == WORD and tok.value == "attach" and toks[k + 1].value == "partition":
                return name_at(toks, k + 2)[0]
        return None
