"""The statements a restore admits: what pg_dump writes, judged one by one, and nothing else."""

from __future__ import annotations

import pytest

from services import grammar
from services.grammar import Refused, judge, redact
from services.sqllex import Lexer, Statement


def one(text: str) -> Statement:
    lexer = Lexer()
    out = []
    for line in (text + "\n").encode().splitlines(keepends=True):
        out.extend(lexer.feed(line))
    lexer.finish()
    assert len(out) == 1 and isinstance(out[0], Statement), out
    return out[0]


ADMITTED = [
    ("SET statement_timeout = 0;", grammar.SESSION),
    ("SET client_encoding = 'LATIN1';", grammar.SESSION),
    ("SET default_tablespace = '';", grammar.SESSION),
    ("SET search_path = public, pg_catalog;", grammar.SESSION),
    ("SET SESSION AUTHORIZATION app_reader;", grammar.SESSION),
    ("RESET SESSION AUTHORIZATION;", grammar.SESSION),
    ("SELECT pg_catalog.set_config('search_path', '', false);", grammar.SESSION),
    ("SELECT pg_catalog.setval('public.s', 5, true);", grammar.CATALOG_CALL),
    ("SELECT pg_catalog.lo_create('16403');", grammar.CATALOG_CALL),
    ("SELECT pg_catalog.lowrite(0, '\\x68656c6c6f');", grammar.CATALOG_CALL),
    ("COPY public.t (id, v) FROM stdin;", grammar.COPY),
    ("COPY public.t  FROM stdin;", grammar.COPY),
    ("CREATE ROLE appuser;", grammar.CREATE_ROLE),
    ("ALTER ROLE appuser WITH NOSUPERUSER INHERIT LOGIN PASSWORD 'SCRAM-SHA-256$x';", grammar.ALTER_ROLE),
    ("ALTER ROLE appuser SET search_path TO 'public', 'shop';", grammar.ROLE_SETTING),
    ("ALTER ROLE appuser IN DATABASE shop SET work_mem TO '8MB';", grammar.ROLE_DB_SETTING),
    ("GRANT admin TO appuser WITH INHERIT TRUE GRANTED BY postgres;", grammar.ROLE_GRANT),
    ("GRANT SET ON PARAMETER work_mem TO app_owner;", grammar.PARAMETER_GRANT),
    ("CREATE DATABASE shop WITH TEMPLATE = template0 ENCODING = 'UTF8' LOCALE = 'C.UTF-8';", grammar.CREATE_DATABASE),
    ("ALTER DATABASE shop OWNER TO postgres;", grammar.DATABASE),
    ("GRANT CONNECT ON DATABASE shop TO appuser;", grammar.DATABASE),
    ("CREATE TABLESPACE ts OWNER app LOCATION '/srv/ts';", grammar.TABLESPACE),
    ("CREATE FUNCTION public.f(x integer) RETURNS integer LANGUAGE sql BEGIN ATOMIC SELECT (x + 1); END;", grammar.DDL),
    ("CREATE FUNCTION public.g() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;", grammar.DDL),
    ("CREATE MATERIALIZED VIEW public.mv AS SELECT 1 AS a WITH NO DATA;", grammar.DDL),
    ("CREATE SUBSCRIPTION s CONNECTION 'dbname=x' PUBLICATION p WITH (connect = false, slot_name = 's');", grammar.DDL),
    ("CREATE UNLOGGED SEQUENCE app.s START WITH 1;", grammar.DDL),
    ("REFRESH MATERIALIZED VIEW public.mv;", grammar.DDL),
    ("UPDATE pg_catalog.pg_database SET datistemplate = 't' WHERE datname = 'tmpl';", grammar.DATABASE),
    ("BEGIN;", grammar.SESSION),
    ("COMMIT;", grammar.SESSION),
]  # fmt: skip


@pytest.mark.parametrize(("text", "kind"), ADMITTED, ids=[t for t, _ in ADMITTED])
def test_what_pg_dump_writes_is_admitted(text: str, kind: str) -> None:
    assert judge(one(text)).kind == kind


REFUSED = [
    ("COPY public.t (a) FROM PROGRAM 'id';", "FROM stdin"),
    ("COPY public.t FROM '/etc/passwd';", "FROM stdin"),
    ("COPY public.t TO '/tmp/x';", "FROM stdin"),
    ("ALTER SYSTEM SET shared_preload_libraries = 'evil';", "server's configuration"),
    ("SELECT pg_read_file('/etc/passwd');", "SELECT that pg_dump does not write"),
    ("SELECT pg_catalog.pg_read_file('/etc/passwd');", "not a call pg_dump writes"),
    ("SELECT pg_catalog.setval('s', (SELECT 1), true);", "literal arguments"),
    ("SELECT pg_catalog.set_config('session_replication_role', 'replica', false);", "search_path"),
    ("SELECT pg_catalog.lo_import('/etc/passwd');", "not a call pg_dump writes"),
    ("DO $$BEGIN PERFORM 1; END$$;", "DO is not"),
    ("CALL public.p();", "CALL is not"),
    ("LOAD 'evil';", "LOAD is not"),
    ("DROP DATABASE production;", "DROP is not"),
    ("INSERT INTO t VALUES (1);", "INSERT is not"),
    ("UPDATE pg_catalog.pg_authid SET rolsuper = true WHERE rolname = 'x';", "UPDATE is not"),
    ("UPDATE pg_catalog.pg_database SET datistemplate = 't' WHERE datname = 'x' OR true;", "unexpected"),
    ("SET session_replication_role = replica;", "not a setting pg_dump writes"),
    ("SET ROLE postgres;", "not a setting pg_dump writes"),
    ("SET standard_conforming_strings = off;", "never writes"),
    ("SET client_encoding = 'SJIS';", "not a server encoding"),
    ("CREATE ROLE evil LOGIN PASSWORD 'p';", "pg_dumpall's shape"),
    ("CREATE USER evil PASSWORD 'p';", "CREATE USER"),
    ("ALTER USER postgres PASSWORD 'p';", "ALTER USER"),
    ("ALTER ROLE x RENAME TO y;", "RENAME"),
    ("ALTER ROLE x SET session_preload_libraries = 'evil';", "loads server code"),
    ("ALTER DATABASE shop SET role = 'postgres';", "changes who a session is"),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE c AS '/lib/libc.so.6', 'system';", "untrusted language"),
    ("CREATE FUNCTION f(text) RETURNS text LANGUAGE internal AS 'pg_read_file_all';", "untrusted language"),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE plpython3u AS $$import os$$;", "untrusted language"),
    ("CREATE TABLE t AS SELECT pg_read_file('/etc/passwd');", "pg_read_file"),
    ("CREATE TABLE t AS SELECT 1;", "AS runs a query"),
    ("CREATE MATERIALIZED VIEW mv AS SELECT 1;", "filled at creation"),
    ("CREATE MATERIALIZED VIEW mv AS SELECT pg_ls_dir('.') WITH NO DATA;", "pg_ls_dir"),
    ("CREATE TABLE t (a text DEFAULT pg_catalog.pg_read_file('/etc/passwd'));", "pg_read_file"),
    ("CREATE VIEW v AS SELECT dblink_exec('host=evil', 'x');", "dblink_exec"),
    ("CREATE FOREIGN TABLE t (a text) SERVER s OPTIONS (program 'id');", "runs a program"),
    ('CREATE FOREIGN TABLE t (a text) SERVER s OPTIONS ("program" \'id\');', "runs a program"),
    ("CREATE DATABASE copy WITH TEMPLATE = production;", "other than template0"),
    ("CREATE SUBSCRIPTION s CONNECTION 'host=evil' PUBLICATION p;", "connects at creation"),
    ("ALTER SUBSCRIPTION s ENABLE;", "OWNER TO"),
    ("ALTER EXTENSION x UPDATE;", "ALTER EXTENSION"),
    ("REVOKE admin FROM appuser;", "role membership"),
    ("VACUUM;", "VACUUM is not"),
    ("CREATE TABLE IF NOT EXISTS public.precious (id int);", "IF NOT EXISTS"),
    ("CREATE TRUSTED LANGUAGE evil HANDLER plpython3_call_handler;", "defined by its handler"),
    (
        "CREATE TABLE t (a xml DEFAULT pg_catalog.query_to_xml('COPY x TO PROGRAM ''id''', true, true, ''));",
        "query_to_xml",
    ),
    ("CREATE OPERATOR public.### (FUNCTION = pg_catalog.pg_read_file, LEFTARG = text);", "pg_read_file"),
    ("CREATE VIEW v AS SELECT \"pg_ls_dir\"('.');", "pg_ls_dir"),
    ("ALTER ROLE ALL SET search_path = evil;", "ALL stands for roles"),
    ("GRANT CURRENT_USER TO evil;", "CURRENT_USER stands for roles"),
    ("ALTER ROLE x WITH CONNECTION LIMIT '1 SUPERUSER';", "whole number"),
    ("GRANT ALL ON DATABASE shop, other TO x;", "a list of databases"),
    ("ALTER ROLE U&\"\\0070ostgres\" SET work_mem = 1;", "U&-escaped"),
    ("CREATE FUNCTION f() RETURNS int LANGUAGE\vc AS 'x';", "untrusted language"),
    ("GRANT SELECT ON ALL TABLES IN SCHEMA public TO PUBLIC;", "ON ALL ... IN SCHEMA"),
    ("ALTER TABLE ALL IN TABLESPACE pg_default SET TABLESPACE other;", "ALL IN TABLESPACE"),
    ("ALTER INDEX public.i SET TABLESPACE other;", "SET TABLESPACE"),
    ("ALTER TABLE ONLY public.t ADD CONSTRAINT c CHECK (pg_catalog.lo_unlink('7'::oid) = 1);", "lo_unlink"),
    ("CREATE VIEW public.v AS SELECT pg_catalog.pg_replication_origin_drop('o');", "pg_replication_origin_drop"),
    ("CREATE OR REPLACE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1';", "views and languages only"),
    ("CREATE FUNCTION pg_catalog.lower(text) RETURNS text LANGUAGE sql AS 'SELECT 1';", "created in pg_catalog"),
    ("REVOKE ALL ON ALL FUNCTIONS IN SCHEMA public FROM x;", "ON ALL ... IN SCHEMA"),
    ("SELECT pg_catalog.lo_open('1e3', 131072);", "not a whole number"),
    ("SELECT pg_catalog.lo_create('99999999999');", "not a whole number"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "why"), REFUSED, ids=[t for t, _ in REFUSED])
def test_what_pg_dump_never_writes_is_refused_with_its_line_and_reason(text: str, why: str) -> None:
    with pytest.raises(Refused) as refused:
        judge(one("\n\n" + text))
    assert refused.value.line == 3
    assert why in str(refused.value)


def test_role_options_are_rebuilt_without_password_or_superuser() -> None:
    v = judge(one("ALTER ROLE \"we'ird\" WITH SUPERUSER LOGIN CONNECTION LIMIT 5 PASSWORD 'x';"))
    assert v.options is not None and v.options.password
    text = v.options.render("we'ird", keep_password=None, superuser=False)
    assert text == 'ALTER ROLE "we\'ird" WITH LOGIN NOSUPERUSER CONNECTION LIMIT 5;'
    assert "PASSWORD" not in text


def test_refusals_never_quote_a_password() -> None:
    with pytest.raises(Refused) as refused:
        judge(one("CREATE ROLE evil LOGIN PASSWORD 'hunter2-secret';"))
    assert "hunter2-secret" not in str(refused.value)
    assert redact("CONNECTION 'host=x password=''p w'''") == "CONNECTION 'host=x password=***'"


@pytest.mark.parametrize(
    "text",
    [
        "ALTER ROLE x PASSWORD /* a /* nested */ b */ 'hunter2-secret';",
        "ALTER ROLE x PASSWORD -- a\n/* b */ 'hunter2-secret';",
        "CREATE USER MAPPING FOR x SERVER s OPTIONS (\"password\" 'hunter2-secret');",
        "CREATE SUBSCRIPTION s CONNECTION 'postgresql://u:hunter2-secret@h/db' PUBLICATION p;",
    ],
)
def test_a_password_is_masked_whatever_stands_between(text: str) -> None:
    assert "hunter2-secret" not in grammar.excerpt(one(text), limit=500)


def test_masking_a_statement_of_many_comments_and_literals_ends() -> None:
    """A hostile statement made for the masking's regular expressions (one that could
    match many comments at once once took time doubling with each comment): run apart,
    so that a regression hangs a child, not the suite."""
    import subprocess
    import sys

    code = (
        "from services.grammar import mask_literals\n"
        "mask_literals(\"DO 'x' password \" + '/**/ ' * 5000 + \"x 'lit';\")\n"
        "mask_literals('CREATE x ' + \"'a', \" * 20000 + ';')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], timeout=300, check=False)
    assert done.returncode == 0


@pytest.mark.parametrize(
    ("text", "languages"),
    [
        # SQL-standard bodies as pg_dump 14+ writes them: the word language there is a
        # column or a field, not the clause.
        (
            "CREATE FUNCTION public.lang(d public.docs) RETURNS text\n"
            "    LANGUAGE sql\n    RETURN (d).language;",
            ("sql",),
        ),
        (
            "CREATE FUNCTION public.langs() RETURNS SETOF text\n    LANGUAGE sql\n"
            "    BEGIN ATOMIC\n SELECT language\n    FROM public.docs;\nEND;",
            ("sql",),
        ),
        (
            "CREATE FUNCTION public.f() RETURNS public.language\n    LANGUAGE plpgsql\n"
            "    AS $$BEGIN RETURN NULL; END$$;",
            ("plpgsql",),
        ),
        # A word language elsewhere (a SET value) beside the clause: both are judged.
        (
            "CREATE FUNCTION public.f() RETURNS int SET search_path TO language "
            "LANGUAGE plperl AS $$1$$;",
            ("language", "plperl"),
        ),
    ],
)
def test_the_language_clause_is_told_from_the_word_language_elsewhere(
    text: str, languages: tuple[str, ...]
) -> None:
    assert judge(one(text)).languages == languages
