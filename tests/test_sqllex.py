"""The dump's statements are cut where PostgreSQL's own lexer cuts them."""

from __future__ import annotations

import pytest

from services.sqllex import DOLLAR, QIDENT, STRING, WORD, Lexer, LexError, MetaCommand, Statement


def cut(text: str) -> list[Statement | MetaCommand]:
    lexer = Lexer()
    out: list[Statement | MetaCommand] = []
    for line in text.encode().splitlines(keepends=True):
        out.extend(lexer.feed(line))
    lexer.finish()
    return out


def texts(text: str) -> list[str]:
    return [
        item.text.decode() if isinstance(item, Statement) else f"META {item.text}"
        for item in cut(text)
    ]


def test_statements_end_at_semicolons_outside_quotes_comments_and_parentheses() -> None:
    assert texts(
        "SET a = 1; SET b = 2;\nCREATE TABLE t (\n  a int, -- a; comment\n  b text\n);\n"
    ) == [
        "SET a = 1;",
        "SET b = 2;",
        "CREATE TABLE t (\n  a int, -- a; comment\n  b text\n);",
    ]


def test_strings_identifiers_and_nested_comments_hide_semicolons() -> None:
    out = texts(
        "COMMENT ON TABLE t IS 'a; b '' c';\n"
        'CREATE TABLE "we;ird ""t""" (a int);\n'
        "/* outer /* inner; */ still; */ SELECT pg_catalog.set_config('search_path', '', false);\n"
    )
    assert out[0] == "COMMENT ON TABLE t IS 'a; b '' c';"
    assert out[1].startswith('CREATE TABLE "we;ird')
    assert out[2].endswith("false);") and len(out) == 3


def test_escape_strings_keep_a_backslashed_quote_inside() -> None:
    [stmt] = cut("COMMENT ON TABLE t IS E'it\\'s; fine';\n")
    assert isinstance(stmt, Statement)
    assert [t.kind for t in stmt.tokens][-2:] == [STRING, "punct"]


def test_a_string_continued_after_a_newline_stays_one_literal() -> None:
    [stmt] = cut("COMMENT ON TABLE t IS E'a'\n  '\\'; still in the string';\n")
    assert isinstance(stmt, Statement)
    strings = [t for t in stmt.tokens if t.kind == STRING]
    assert len(strings) == 1 and strings[0].prefix == "E"


def test_dollar_quotes_with_nested_tags() -> None:
    [stmt] = cut(
        "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $fn$\n"
        "BEGIN\n  PERFORM $q$; not the end$q$;\n  RETURN 1; $x$\nEND\n$fn$;\n"
    )
    assert isinstance(stmt, Statement)
    body = [t for t in stmt.tokens if t.kind == DOLLAR][0]
    assert "$q$; not the end$q$" in body.value and body.prefix == "$fn$"


def test_identifier_dollars_do_not_open_a_dollar_quote() -> None:
    [stmt] = cut("CREATE TABLE a$b$ (x int);\n")
    assert isinstance(stmt, Statement)
    assert stmt.tokens[2].kind == WORD and stmt.tokens[2].value == "a$b$"


def test_sql_standard_function_bodies_keep_their_semicolons() -> None:
    out = texts(
        "CREATE FUNCTION public.f(x integer) RETURNS integer\n    LANGUAGE sql\n    BEGIN ATOMIC\n"
        ' SELECT (x + 1);\n SELECT CASE WHEN (x > 0) THEN 1 ELSE 2 END AS "case";\nEND;\n'
        "ALTER FUNCTION public.f(x integer) OWNER TO postgres;\n"
    )
    assert len(out) == 2 and out[0].endswith("END;")


def test_a_backslash_at_a_line_start_is_a_meta_command() -> None:
    out = cut("SET a = 1;\n\\connect shop\n\\! touch /tmp/x\n")
    assert isinstance(out[1], MetaCommand) and out[1].text == "\\connect shop"
    assert isinstance(out[2], MetaCommand) and out[2].text == "\\! touch /tmp/x"


def test_a_backslash_after_a_statement_on_its_line_is_a_meta_command_too() -> None:
    out = cut("SET a = 1; \\! id\n")
    assert isinstance(out[1], MetaCommand) and out[1].text == "\\! id"


def test_a_backslash_inside_a_statement_is_a_meta_command_not_text() -> None:
    out = cut("SELECT 1 \\g /tmp/out\n")
    assert [type(x).__name__ for x in out] == ["MetaCommand"]


def test_name_offsets_point_into_the_statement_text() -> None:
    [stmt] = cut('SET x = 1; ALTER DATABASE "we""ird" OWNER TO\n  postgres;\n')[1:]
    assert isinstance(stmt, Statement)
    name = stmt.tokens[2]
    assert name.kind == QIDENT and name.value == 'we"ird'
    assert stmt.text[name.offset : name.offset + name.length] == b'"we""ird"'
    owner = stmt.tokens[-2]
    assert stmt.text[owner.offset : owner.offset + owner.length] == b"postgres"


def test_unquoted_names_fold_to_lower_case_in_ascii_only() -> None:
    [stmt] = cut("CREATE TABLE ÜberTabelle (a int);\n")
    assert isinstance(stmt, Statement)
    assert stmt.tokens[2].value == "Übertabelle"


@pytest.mark.parametrize(
    "text",
    ["COMMENT ON TABLE t IS 'never closed;\n", "SET a = 1\n", "/* open\n", "SELECT $x$ body\n"],
)
def test_input_that_ends_inside_a_construct_is_an_error(text: str) -> None:
    with pytest.raises(LexError, match="ends inside"):
        cut(text)


def test_a_statement_past_the_bound_is_an_error() -> None:
    lexer = Lexer(max_statement=1000)
    with pytest.raises(LexError, match="longer than"):
        for _ in range(100):
            lexer.feed(b"COMMENT ON TABLE t IS 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n")


def test_a_literal_keeps_bytes_its_codec_lacks_and_a_name_may_not() -> None:
    """0x81 is a character of PostgreSQL's WIN1252 that Python's cp1252 leaves undefined: in
    a literal it is data (kept as it is), in a name pgdeck cannot read what the server
    reads, so it refuses."""
    lexer = Lexer(codec="cp1252", errors="strict")
    (stmt,) = lexer.feed(b"COMMENT ON TABLE public.t IS 'caf\xe9 \x81';\n")
    assert isinstance(stmt, Statement)
    assert stmt.tokens[-2].kind == STRING and stmt.tokens[-2].value == "caf\xe9 \udc81"
    with pytest.raises(LexError, match="a name with bytes"):
        Lexer(codec="cp1252", errors="strict").feed(b"COMMENT ON TABLE public.\"t\x81\" IS 'x';\n")
