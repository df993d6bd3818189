"""What the statements of a backup become on the target: the dump reader's consumer.

Each statement the reader judged (``services.dump``) is filtered to the restore's scope
(``services.restore_plan``), checked against what the target already has, and sent through
pgdeck's own sessions (``services.loader``): table data only into tables this backup
created, large objects only of its own, nothing naming the target's own tables, schemas,
functions or types in a database the target already had, event triggers only once their
database is complete. A statement that would change what is the target's is refused
before it is sent (``NotADump``, ``RefusedInPlace``).
"""

from __future__ import annotations

from services import grammar
from services.copy_lanes import LanePool
from services.copy_order import waits_for_data
from services.dump import DumpReader, NotADump, TableRows, qualified
from services.errors import PgdeckError
from services.grammar import Verdict
from services.loader import Loader
from services.postdata_order import PostStatement, classify
from services.restore_plan import SPILO_SCHEMAS, TARGETS_OWN, RestoreFilter, first_qualified
from services.sqllex import QIDENT, STRING, WORD, Statement

# The words that stand before a function's or a type's name in ALTER, GRANT ... ON, COMMENT
# ON and SECURITY LABEL ... ON.
_ROUTINE_KINDS = frozenset({"function", "procedure", "routine", "aggregate", "type", "domain"})


class RefusedInPlace(NotADump):
    """A statement of a real backup that cannot be restored into a database the target
    already had (its own postgres or template1, named) without changing what the target
    has there."""

    def __init__(self, line: int, reason: str) -> None:
        PgdeckError.__init__(self, f"line {line}: {reason}")
        self.line = line
        self.reason = reason


class TargetWriter:
    """Sends a backup's statements to the target, one restore's worth; ``reader`` is the
    dump reader feeding it (its encoding, line and current table)."""

    def __init__(
        self,
        loader: Loader,
        restore_filter: RestoreFilter,
        target_databases: set[str],
        lanes: LanePool | None = None,
    ) -> None:
        self._loader = loader
        # --jobs N: COPY rows go to the lanes; the rest waits for them where it must.
        self._lanes = lanes
        self._filter = restore_filter
        self._target_databases = target_databases
        self.reader: DumpReader | None = None
        self._in_copy = False
        # Rows stored by each table's COPY, as the server counted them: (database, table).
        self.copied: dict[tuple[str, str], int] = {}
        self.last: tuple[int, str] | None = None  # the statement being sent: line, text
        # Event triggers (and their own statements) wait for the end of their database's
        # section, so that nothing the restore sends fires them.
        self._deferred: list[tuple[int, bytes]] = []
        # Statements of the backup's postgres and template1 a whole-cluster restore left out.
        self.own_left_out: dict[str, int] = {}
        # In a database the target already had (postgres, template1 restored in place):
        # its own relations, which no statement of the backup may name.
        self._own_db = False
        # pg_dump's search_path ('') is in force: an unqualified name reaches no relation
        # of the target's (pg_catalog's only).
        self._path_empty = False
        self._preexisting: set[tuple[str, str]] = set()
        self._preexisting_names: set[str] = set()
        self._own_schemas: set[str] = set()
        self._own_routines: set[tuple[str, str]] = set()  # its functions and types
        self.kept_own = 0  # statements about its schemas and default privileges left out
        # Large objects the backup created in the current database: the only ones it may
        # open, write, alter or grant.
        self._large_objects: set[int] = set()

    def statement(self, stmt: Statement, verdict: Verdict, section: str | None) -> None:
        assert self.reader is not None
        encoding = self.reader.encoding
        self._filter.codec = grammar.codec_for(encoding)[0]
        sends = self._filter.statement(stmt, verdict, section)
        if verdict.kind == grammar.SESSION and verdict.name == "search_path" and section:
            self._path_empty = sends != [] and not (verdict.setting or "").strip(" '\"")
        if not sends:
            if section in TARGETS_OWN and verdict.kind != grammar.SESSION:
                self.own_left_out[section] = self.own_left_out.get(section, 0) + 1
            return  # not restored in this scope, or the target's own: nothing to judge
        # A language the grammar cannot judge by name: the target says whether its
        # functions can reach the server's files and programs (untrusted). One it does not
        # have cannot be the function's language (the server would refuse the statement).
        for language in verdict.languages:
            if (
                language not in ("sql", "plpgsql")
                and self._loader.language_trusted(language) is False
            ):
                raise NotADump(
                    stmt.line,
                    f"a function in {language}, a language the target marks untrusted (an "
                    "untrusted language can run programs and read files on the database "
                    "server)",
                )
        if self._own_db:
            if self._keeps_targets_own(stmt):
                self.kept_own += 1
                return
            if verdict.event_trigger:
                raise RefusedInPlace(
                    stmt.line,
                    "an event trigger in a database the target already had (it would fire "
                    "on the target's own statements there, and in every database later made "
                    "from template1)",
                )
        if verdict.kind == grammar.COPY:
            self._check_copy_target(stmt, verdict)
        self._check_large_objects(stmt, verdict)
        if self._own_db and verdict.kind in (grammar.DDL, grammar.COPY, grammar.CATALOG_CALL):
            self._check_not_the_targets(stmt)
        lanes = self._lanes
        for send in sends:
            if verdict.event_trigger and not send.maintenance:
                self._deferred.append((stmt.line, send.sql))
                continue
            self.last = (stmt.line, send.sql.decode("utf-8", "replace"))
            if send.copy and lanes is not None:
                database = self._loader.current_database or ""
                table = (verdict.schema or "public", verdict.name or "")
                key = (section or "", f"{table[0]}.{table[1]}")
                lanes.begin(database, key, table, send.sql, encoding, stmt.line)
                self._in_copy = True
            elif send.copy:
                self._loader.copy_begin(send.sql, encoding)
                self._in_copy = True
            elif lanes is not None and (post := self._post(stmt, verdict, send.maintenance)):
                database = self._loader.current_database or ""
                lanes.statement(database, post, send.sql, encoding, stmt.line)
                lanes.alone.see(stmt, verdict, path_empty=self._path_empty)
            else:
                if lanes is not None and waits_for_data(verdict):
                    lanes.wait_idle()
                # The maintenance session reads it in the encoding it was written in; after
                # it, the session must be in the one the reader reads the next in.
                after = None
                if verdict.kind == grammar.SESSION and verdict.name == "client_encoding":
                    after = verdict.setting
                self._loader.execute(
                    send.sql, maintenance=send.maintenance, encoding=encoding, encoding_after=after
                )
                if lanes is not None and not send.maintenance:
                    lanes.log.record(verdict, send.sql, encoding)
                    lanes.alone.see(stmt, verdict, path_empty=self._path_empty)

    def _post(self, stmt: Statement, verdict: Verdict, maintenance: bool) -> PostStatement | None:
        """--jobs N: a post-data statement that may run on the data sessions (only under
        pg_dump's empty search_path, where an unqualified name in it is pg_catalog's and
        the tables it names are those the COPYs were keyed by)."""
        if maintenance or not self._path_empty:
            return None
        return classify(stmt, verdict)

    def _check_copy_target(self, stmt: Statement, verdict: Verdict) -> None:
        """Table data goes only into an ordinary table this backup created (or an
        extension's configuration table), or a partitioned one whose partitions all are,
        never into one the target already had or a foreign table (its rows would go to
        another server)."""
        assert self.reader is not None
        current = self.reader.current
        schema, name = verdict.schema or "public", verdict.name or ""
        qualified = f"{schema}.{name}"
        created = current is not None and (schema, name) in current.created_tables
        if not created and not self._loader.extension_table(schema, name):
            raise NotADump(
                stmt.line,
                f"table data for {qualified}, a table this backup did not create (it would "
                "write into the target's own tables)",
            )
        kind = self._loader.relkind(schema, name)
        if kind == "p" and created:
            # pg_dump loads through the root (--load-via-partition-root, and by itself for
            # hash partitioning on an enum): the rows land in its partitions, each of which
            # must be an ordinary table this backup created.
            assert current is not None
            for part_schema, part, part_kind in self._loader.partitions(schema, name):
                if part_kind == "p":
                    continue
                if part_kind != "r" or (part_schema, part) not in current.created_tables:
                    raise NotADump(
                        stmt.line,
                        f"table data for {qualified}, whose partition {part_schema}.{part} "
                        "is not an ordinary table this backup created (the rows would go "
                        "into a foreign table or one of the target's own)",
                    )
            return
        if kind != "r":
            what = {"f": "a foreign table", "p": "a partitioned table", "v": "a view"}.get(
                kind or "", "not an ordinary table"
            )
            raise NotADump(
                stmt.line,
                f"table data for {qualified}, {what} (pg_dump writes data for ordinary "
                "tables only)",
            )

    def flush_deferred(self) -> None:
        if self._lanes is not None:
            self._lanes.wait_idle()
        for line, sql in self._deferred:
            self.last = (line, sql.decode("utf-8", "replace"))
            self._loader.execute(sql)
        self._deferred = []

    def _keeps_targets_own(self, stmt: Statement) -> bool:
        """In a database the target already had, what the backup says of the target's own
        schemas, functions and types (owner, grants, comment, labels) and its default
        privileges (what every table a role makes later is granted) is left out: the
        target's are kept."""
        words = stmt.words(3)
        if words == ["alter", "default", "privileges"]:
            return True
        if words[0] not in ("alter", "grant", "revoke", "comment", "security"):
            return False
        toks = stmt.tokens
        if first_qualified(toks, _ROUTINE_KINDS) in self._own_routines:
            return True
        for k, tok in enumerate(toks[:-1]):
            if tok.kind != WORD or tok.value != "schema" or tok.depth != 0:
                continue
            if not (k == 1 or (k > 0 and toks[k - 1].value == "on")):
                continue
            j = k + 1  # ON SCHEMA a, b TO ...: the names, and nothing after them
            while j < len(toks) and toks[j].kind in (WORD, QIDENT):
                if toks[j].value in self._own_schemas:
                    return True
                if j + 1 < len(toks) and toks[j + 1].value == ",":
                    j += 2
                else:
                    break
        return False

    def _check_large_objects(self, stmt: Statement, verdict: Verdict) -> None:
        """A large object is created by the backup (lo_create) before anything opens,
        alters or grants it: none of the target's own is written over."""
        oid = verdict.large_object
        if verdict.kind == grammar.CATALOG_CALL and oid is not None:
            if verdict.name == "lo_create":
                self._large_objects.add(oid)
                return
            named = [str(oid)]
        elif verdict.kind == grammar.DDL:
            named = grammar.large_objects_named(stmt)
        else:
            return
        for text in named:
            if not (text.isascii() and text.isdigit() and int(text) in self._large_objects):
                raise NotADump(
                    stmt.line,
                    f"large object {text[:20]}, one this backup did not create (it would "
                    f"change one of the target's own): {grammar.excerpt(stmt)}",
                )

    def _check_not_the_targets(self, stmt: Statement) -> None:
        """In a database the target already had, no statement may name one of its own
        tables or views (fill it, alter it, attach to it, inherit from it, index it)."""
        toks = stmt.tokens
        extension_names = set()  # an extension's name is not a relation's
        for k, tok in enumerate(toks[:-1]):
            if tok.kind == WORD and tok.value == "extension":
                j = k + 1
                while j < len(toks) - 1 and toks[j].value in ("if", "not", "exists"):
                    j += 1
                extension_names.add(j)
        names = {
            t.value
            for j, t in enumerate(toks)
            if t.kind in (WORD, QIDENT) and j not in extension_names
        }
        hit = None
        for k in range(len(toks) - 2):
            a, dot, b = toks[k], toks[k + 1], toks[k + 2]
            if (
                a.kind in (WORD, QIDENT)
                and dot.value == "."
                and b.kind in (WORD, QIDENT)
                and (a.value, b.value) in self._preexisting
            ):
                hit = f"{a.value}.{b.value}"
                break
        if hit is None:  # setval('schema.name', ...): a sequence named in a literal
            for t in toks:
                if t.kind == STRING and "." in t.value:
                    parts = tuple(qualified(t.value).split(".", 1))
                    if len(parts) == 2 and parts in self._preexisting:
                        hit = t.value
                elif (
                    t.kind == STRING
                    and not self._path_empty
                    and t.value.strip('"') in self._preexisting_names
                ):
                    hit = t.value
        if hit is None and not self._path_empty:
            # Another search_path than pg_dump's: an unqualified name may be the target's.
            unqualified = names & self._preexisting_names
            hit = sorted(unqualified)[0] if unqualified else None
        if hit is not None:
            raise RefusedInPlace(
                stmt.line,
                f"a statement naming {hit}, a table or view of the target's own "
                f"{self._loader.current_database} database: "
                f"{grammar.excerpt(stmt)}",
            )

    def connect(self, database: str) -> None:
        self.flush_deferred()
        if self._lanes is not None:
            self._lanes.new_database()
        encoding = self.reader.encoding if self.reader else "UTF8"
        self._filter.codec = grammar.codec_for(encoding)[0]
        sends, new = self._filter.connect(database)
        for send in sends:
            self.last = (self.reader.line_no if self.reader else 0, send.sql.decode())
            self._loader.execute(send.sql, maintenance=True, encoding=encoding)
        self._own_db = False
        self._path_empty = False
        self._preexisting = set()
        self._preexisting_names = set()
        self._own_schemas = set()
        self._own_routines = set()
        self._large_objects = set()
        if new is not None:
            self._loader.use(new)
            if new in self._target_databases and new not in self._filter.created:
                self._own_db = True
                self._preexisting = self._loader.relations()
                self._preexisting_names = {name for _, name in self._preexisting}
                self._own_schemas = self._loader.schemas()
                self._own_routines = self._loader.objects_in(relations=False)
                self._filter.spilo_objects = self._loader.objects_in(SPILO_SCHEMAS)

    def copy_data(self, data: memoryview) -> None:
        if self._in_copy:
            if self._lanes is not None:
                self._lanes.write(data)
            else:
                self._loader.copy_write(data)

    def copy_end(self, table: TableRows) -> None:
        if self._in_copy and self._lanes is not None:
            self._in_copy = False
            self._lanes.end()  # its lane adds the rows stored when its COPY ends
        elif self._in_copy:
            self._in_copy = False
            key = (table.database, table.qualified)
            self.copied[key] = self.copied.get(key, 0) + self._loader.copy_end()
