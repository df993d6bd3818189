"""After a restore: is everything of the dump there (completeness), and does it hold
together (integrity)? The dump itself says what to expect: its tables with their row
counts and its schema objects, read while it streamed by."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from services.config import Check
from services.dump import DumpSummary
from services.target import ResolvedTarget, connect

_OBJECT_QUERIES = {
    "table": "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'f')",
    "view": "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('v', 'm')",
    "sequence": "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'S'",
    "index": "SELECT c.relname FROM pg_class c WHERE c.relkind IN ('i', 'I')",
    "function": "SELECT n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace",
    "type": "SELECT n.nspname || '.' || t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace",
    "constraint": "SELECT conname FROM pg_constraint",
    "foreign key": "SELECT conname FROM pg_constraint WHERE contype = 'f'",
}

_FOREIGN_KEYS = """
SELECT c.conname, c.conrelid::regclass::text, c.confrelid::regclass::text,
       array_agg(a.attname ORDER BY k.ord), array_agg(af.attname ORDER BY k.ord), c.convalidated
FROM pg_constraint c
CROSS JOIN LATERAL unnest(c.conkey, c.confkey) WITH ORDINALITY AS k(child, parent, ord)
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.child
JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = k.parent
WHERE c.contype = 'f'
GROUP BY c.oid, c.conname, c.conrelid, c.confrelid, c.convalidated
ORDER BY 2, 1
"""


@dataclass(frozen=True, slots=True)
class TableCheck:
    database: str  # as restored (target name)
    table: str  # schema.name
    expected: int
    restored: int | None  # None: the table is missing

    @property
    def ok(self) -> bool:
        return self.restored == self.expected

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "table": self.table,
            "expected": self.expected,
            "restored": self.restored,
        }


@dataclass(frozen=True, slots=True)
class ForeignKeyCheck:
    database: str
    constraint: str
    table: str  # the referencing table
    references: str
    orphans: int
    how: str  # counted, or validated by PostgreSQL

    def to_dict(self) -> dict[str, Any]:
        return {
            "database": self.database,
            "constraint": self.constraint,
            "table": self.table,
            "references": self.references,
            "orphans": self.orphans,
            "how": self.how,
        }


@dataclass(frozen=True, slots=True)
class CheckResult:
    """A team's check (a query that must return no rows) run on the restored database."""

    name: str
    database: str
    rows: int | None  # None: the query failed
    passed: bool
    sample: tuple[tuple[str, ...], ...] = ()  # the first rows it returned
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "name": self.name,
            "database": self.database,
            "rows": self.rows,
            "passed": self.passed,
        }
        if self.error is None:
            entry["sample"] = [list(r) for r in self.sample]
        else:
            entry["error"] = self.error
        return entry


@dataclass(frozen=True, slots=True)
class Validation:
    tables: tuple[TableCheck, ...] = ()
    missing_objects: Mapping[str, Mapping[str, list[str]]] = field(default_factory=dict)
    foreign_keys: tuple[ForeignKeyCheck, ...] = ()
    checks: tuple[CheckResult, ...] = ()
    unmatched: tuple[str, ...] = ()  # restored databases nothing was checked in
    seconds: float = 0.0

    @property
    def completeness_passed(self) -> bool:
        return (
            all(t.ok for t in self.tables)
            and not any(self.missing_objects.values())
            and not self.unmatched
        )

    @property
    def integrity_passed(self) -> bool:
        return all(fk.orphans == 0 for fk in self.foreign_keys) and all(
            c.passed for c in self.checks
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "completeness": {
                "passed": self.completeness_passed,
                "tables_checked": len(self.tables),
                "tables_wrong": [t.to_dict() for t in self.tables if not t.ok],
                "missing_objects": {db: dict(kinds) for db, kinds in self.missing_objects.items()},
                "databases_not_checked": list(self.unmatched),
            },
            "integrity": {
                "passed": self.integrity_passed,
                "foreign_keys": [fk.to_dict() for fk in self.foreign_keys],
                "checks": [c.to_dict() for c in self.checks],
            },
            "seconds": round(self.seconds, 3),
        }


def validate(
    target: ResolvedTarget,
    summary: DumpSummary,
    names: dict[str, str],
    checks: tuple[Check, ...] = (),
    *,
    copied: dict[tuple[str, str], int] | None = None,
    thorough: bool = False,
    event_triggers_off: bool = False,
    written: list[str] | None = None,
) -> Validation:
    """``names``: dump database -> target database, for the databases restored.

    ``copied`` holds the server's own count of rows stored by each table's COPY (the
    command tags): pg_dump creates triggers and rules only after the data, so nothing
    changes those rows afterwards, and the tables need no second scan. Likewise a foreign
    key that PostgreSQL validated when the dump added it (after the data) has no orphan
    by construction; only keys restored NOT VALID are counted. ``thorough`` recounts
    every table and every key with queries instead.
    """
    import time

    from psycopg import sql

    started = time.monotonic()
    tables: list[TableCheck] = []
    missing_objects: dict[str, dict[str, list[str]]] = {}
    foreign_keys: list[ForeignKeyCheck] = []
    seen: set[str] = set()
    for section in summary.databases:
        if section.name not in names or section.name == "template0":
            continue
        seen.add(section.name)
        target_db = names[section.name]
        # The restored database's own settings (ALTER DATABASE ... SET search_path) come
        # from the backup: these queries name pg_catalog's objects whatever they say.
        # UTF8 too: in a SQL_ASCII database psycopg would hand back bytes, not names.
        options = "-c search_path=pg_catalog,pg_temp -c client_encoding=UTF8"
        if event_triggers_off:
            options += " -c event_triggers=off"
        with connect(target, target_db, options=options) as conn:
            existing = {r[0] for r in conn.execute(_OBJECT_QUERIES["table"])}
            for t in section.tables:
                restored: int | None
                if t.qualified not in existing:
                    restored = None
                elif copied is not None and not thorough and (section.name, t.qualified) in copied:
                    restored = copied[(section.name, t.qualified)]
                else:
                    q = sql.SQL("SELECT count(*) FROM ONLY {}.{}").format(
                        sql.Identifier(t.schema), sql.Identifier(t.name)
                    )
                    row = conn.execute(q).fetchone()
                    restored = int(row[0]) if row else 0
                tables.append(TableCheck(target_db, t.qualified, t.rows, restored))
            missing: dict[str, list[str]] = {}
            for kind, names_in_dump in section.objects.items():
                query = _OBJECT_QUERIES.get(kind)
                if query is None:
                    continue
                have = {r[0] for r in conn.execute(query)}
                gone = sorted(n for n in names_in_dump if n not in have)
                if gone:
                    missing[kind] = gone
            if missing:
                missing_objects[target_db] = missing
            for conname, child, parent, ccols, pcols, valid in conn.execute(
                _FOREIGN_KEYS
            ).fetchall():
                if valid and not thorough:
                    orphans, how = 0, "validated by PostgreSQL when the restore added it"
                else:
                    orphans, how = (
                        _orphans(conn, child, parent, list(ccols), list(pcols)),
                        "counted",
                    )
                foreign_keys.append(
                    ForeignKeyCheck(target_db, conname, child, parent, orphans, how)
                )
    # A database the restore wrote to (``written``, as the filter counted them) and that
    # validation never reached is a failure, never "passed (0 tables)".
    checked = {names[n] for n in seen}
    unmatched = sorted(set(written or names.values()) - checked - {"template0"})
    results: list[CheckResult] = []
    for check in checks:
        db = names.get(check.database)
        if db is None:
            continue
        try:
            with connect(
                target, db, options="-c event_triggers=off" if event_triggers_off else None
            ) as conn:
                rows = conn.execute(check.sql).fetchall()  # type: ignore[call-overload]
            sample = tuple(tuple(map(str, r)) for r in rows[:5])
            results.append(CheckResult(check.name, db, len(rows), not rows, sample))
        except Exception as exc:
            error = str(exc).strip().splitlines()[0]
            results.append(CheckResult(check.name, db, None, False, error=error))
    return Validation(
        tuple(tables),
        missing_objects,
        tuple(foreign_keys),
        tuple(results),
        tuple(unmatched),
        time.monotonic() - started,
    )


def _orphans(conn: Any, child: str, parent: str, ccols: list[str], pcols: list[str]) -> int:
    from psycopg import sql

    # regclass text is already quoted where needed; columns are quoted here.
    c = [sql.SQL("c.{}").format(sql.Identifier(col)) for col in ccols]
    p = [sql.SQL("p.{}").format(sql.Identifier(col)) for col in pcols]
    q = sql.SQL(
        "SELECT count(*) FROM ONLY {child} c WHERE {notnull} AND NOT EXISTS "
        "(SELECT 1 FROM {parent} p WHERE {match})"
    ).format(
        child=sql.SQL(child),
        parent=sql.SQL(parent),
        notnull=sql.SQL(" AND ").join(sql.SQL("{} IS NOT NULL").format(x) for x in c),
        match=sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(a, b) for a, b in zip(p, c, strict=True)
        ),
    )
    row = conn.execute(q).fetchone()
    return int(row[0]) if row else 0
