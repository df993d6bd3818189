"""What a parallel load may overlap, judged from statements as pg_dump writes them."""

from __future__ import annotations

from services import grammar
from services.copy_order import LoadAlone, SessionLog, replay, waits_for_data
from services.sqllex import Lexer, Statement


def statements(text: str) -> list[Statement]:
    lexer = Lexer()
    out: list[Statement] = []
    for line in text.encode().splitlines(keepends=True):
        out += [s for s in lexer.feed(line) if isinstance(s, Statement)]
    return out


def test_only_settings_and_catalog_calls_run_beside_the_copies() -> None:
    kinds = {
        s.text.decode(): waits_for_data(grammar.judge(s))
        for s in statements(
            "SET search_path = '';\n"
            "SELECT pg_catalog.set_config('search_path', '', false);\n"
            "SELECT pg_catalog.setval('public.s', 5, true);\n"
            "SELECT pg_catalog.lo_create('42');\n"
            "BEGIN;\nCOMMIT;\n"
            "CREATE INDEX i ON public.t USING btree (a);\n"
            "ALTER TABLE ONLY public.t ADD CONSTRAINT t_pkey PRIMARY KEY (a);\n"
            "COMMENT ON TABLE public.t IS 'x';\n"
        )
    }
    assert [k for k, waits in kinds.items() if not waits] == [
        "SET search_path = '';",
        "SELECT pg_catalog.set_config('search_path', '', false);",
        "SELECT pg_catalog.setval('public.s', 5, true);",
        "SELECT pg_catalog.lo_create('42');",
        "BEGIN;",
        "COMMIT;",
    ]


def test_a_data_session_replays_what_it_lacks_and_every_encoding_change() -> None:
    log = SessionLog()
    for s in statements(
        "SET client_encoding = 'UTF8';\n"
        "SET search_path = a;\n"
        "SET client_encoding = 'LATIN1';\n"
        "SET search_path = b;\n"
        "BEGIN;\n"
        "SET default_tablespace = '';\n"
    ):
        log.record(grammar.judge(s), s.text, "UTF8")
    assert [e.name for e in log.entries] == [
        "client_encoding",
        "search_path",
        "client_encoding",
        "search_path",
        "default_tablespace",
    ]
    todo = replay(log.entries, {"default_tablespace": b"SET default_tablespace = '';"})
    assert [e.sql for e in todo] == [
        b"SET client_encoding = 'UTF8';",
        b"SET client_encoding = 'LATIN1';",
        b"SET search_path = b;",
    ]
    assert todo[1].encoding_after == "LATIN1"


def see_all(text: str, *, path_empty: bool = True) -> LoadAlone:
    alone = LoadAlone()
    for s in statements(text):
        alone.see(s, grammar.judge(s), path_empty=path_empty)
    return alone


def test_tables_whose_rows_call_the_dumps_functions_load_alone() -> None:
    alone = see_all(
        "CREATE DOMAIN public.pos AS integer CONSTRAINT c CHECK (public.ok(VALUE));\n"
        "CREATE DOMAIN public.plain AS integer CONSTRAINT c CHECK ((VALUE > 0));\n"
        "CREATE TABLE public.a (v integer, CONSTRAINT a_v_check CHECK (public.ok(v)));\n"
        "CREATE TABLE public.b (v integer, CONSTRAINT b_v_check CHECK ((v > 0)));\n"
        "CREATE TABLE public.c (v public.pos);\n"
        "CREATE TABLE public.d (v public.plain, w integer GENERATED ALWAYS AS (public.f(v)) STORED);\n"
        "CREATE TABLE public.e (v public.plain);\n"
        "CREATE TABLE public.p (v integer) PARTITION BY RANGE (public.f(v));\n"
        "CREATE TABLE public.p1 (v integer);\n"
        "ALTER TABLE ONLY public.p ATTACH PARTITION public.p1 FOR VALUES FROM (0) TO (9);\n"
        "CREATE TABLE public.q (v integer) PARTITION BY RANGE (v);\n"
        "CREATE TABLE public.q1 (v integer, CONSTRAINT q1_check CHECK (public.ok(v)));\n"
        "ALTER TABLE ONLY public.q ATTACH PARTITION public.q1 FOR VALUES FROM (0) TO (9);\n"
    )
    verdicts = {
        t: alone.alone("public", t) for t in ["a", "b", "c", "d", "e", "p", "p1", "q", "q1"]
    }
    assert verdicts == {
        "a": True,
        "b": False,
        "c": True,  # its domain's CHECK calls a function
        "d": True,  # a generated column
        "e": False,
        "p": True,  # the partition key
        "p1": True,  # ... holds for its partitions
        "q": True,  # rows COPYed into the root land in a partition with such a CHECK
        "q1": True,
    }
    # Under another search_path than pg_dump's, every CHECK counts.
    assert see_all("CREATE TABLE public.b (v integer CHECK ((v > 0)));\n", path_empty=False).alone(
        "public", "b"
    )
