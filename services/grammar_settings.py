"""The settings a dump may give its session or store, and the encodings it may use.

Server encodings whose multi-byte characters never hide a quote or a backslash, and the
Python codec each is read with; the session settings pg_dump writes with the values it
writes; the settings a dump may not attach to a role or a database.
"""

from __future__ import annotations

# ASCII-safe server encodings: no byte of a multi-byte character is below 0x80, so the
# lexer's view of quotes and backslashes is the server's. (SJIS, BIG5, GBK, UHC, GB18030
# and JOHAB are client-only encodings whose second bytes can be a backslash.)
SAFE_ENCODINGS = frozenset(
    {
        "UTF8", "SQLASCII", "LATIN1", "LATIN2", "LATIN3", "LATIN4", "LATIN5", "LATIN6",
        "LATIN7", "LATIN8", "LATIN9", "LATIN10", "WIN866", "WIN874", "WIN1250", "WIN1251",
        "WIN1252", "WIN1253", "WIN1254", "WIN1255", "WIN1256", "WIN1257", "WIN1258",
        "KOI8R", "KOI8U", "ISO88595", "ISO88596", "ISO88597", "ISO88598", "EUCJP",
        "EUCJIS2004", "EUCCN", "EUCKR", "EUCTW", "MULEINTERNAL", "UNICODE",
    }
)  # fmt: skip

# How to read names and strings in each server encoding (what the lexer decodes with);
# None: no Python codec, so only ASCII names are read (others are refused).
ENCODING_CODECS: dict[str, str | None] = {
    "UTF8": "utf-8", "UNICODE": "utf-8", "SQLASCII": "utf-8", "LATIN1": "latin-1",
    "LATIN2": "iso8859-2", "LATIN3": "iso8859-3", "LATIN4": "iso8859-4", "LATIN5": "iso8859-9",
    "LATIN6": "iso8859-10", "LATIN7": "iso8859-13", "LATIN8": "iso8859-14",
    "LATIN9": "iso8859-15", "LATIN10": "iso8859-16", "WIN866": "cp866", "WIN874": "cp874",
    "WIN1250": "cp1250", "WIN1251": "cp1251", "WIN1252": "cp1252", "WIN1253": "cp1253",
    "WIN1254": "cp1254", "WIN1255": "cp1255", "WIN1256": "cp1256", "WIN1257": "cp1257",
    "WIN1258": "cp1258", "KOI8R": "koi8-r", "KOI8U": "koi8-u", "ISO88595": "iso8859-5",
    "ISO88596": "iso8859-6", "ISO88597": "iso8859-7", "ISO88598": "iso8859-8",
    "EUCJP": "euc_jp", "EUCJIS2004": "euc_jis_2004", "EUCCN": "gb2312", "EUCKR": "euc_kr",
    "EUCTW": None, "MULEINTERNAL": None,
}  # fmt: skip


def codec_for(encoding: str) -> tuple[str, str]:
    """(codec, errors) to read names and strings sent under ``encoding``. SQL_ASCII
    carries any bytes, read as UTF-8 where they are and kept as they are where not."""
    name = normalize_encoding(encoding)
    if name == "SQLASCII":
        return "utf-8", "surrogateescape"
    return ENCODING_CODECS.get(name) or "ascii", "strict"


def normalize_encoding(name: str) -> str:
    return name.upper().replace("-", "").replace("_", "")


_ZERO = {"0"}
_BOOL_OFF = {"false", "off"}
# name -> allowed values (lower case) or None for "a name or a literal"
SESSION_SETTINGS: dict[str, set[str] | None] = {
    "statement_timeout": _ZERO,
    "lock_timeout": _ZERO,
    "idle_in_transaction_session_timeout": _ZERO,
    "transaction_timeout": _ZERO,
    "client_encoding": None,  # checked against SAFE_ENCODINGS
    "standard_conforming_strings": {"on", "true"},
    "check_function_bodies": _BOOL_OFF,
    "xmloption": {"content", "document"},
    "client_min_messages": {"debug5", "debug4", "debug3", "debug2", "debug1", "log", "notice", "warning", "error"},
    "row_security": {"on", "off", "true", "false"},
    "default_tablespace": None,
    "default_table_access_method": None,
    "default_with_oids": _BOOL_OFF,
    "search_path": None,
    "default_transaction_read_only": _BOOL_OFF,
    "escape_string_warning": {"on", "off", "true", "false"},
}  # fmt: skip


# Settings a dump may not attach to a role or a database: they load server libraries at
# the next login, or change who a session is and which triggers fire.
FORBIDDEN_STORED = frozenset(
    {
        "session_preload_libraries",
        "local_preload_libraries",
        "shared_preload_libraries",
        "dynamic_library_path",
        "session_replication_role",
        "role",
        "session_authorization",
    }
)
