"""Secrets hidden from what messages, logs and reports quote of a backup's statements.

``redact`` hides role passwords, user mapping passwords and the secrets of connection
strings in a statement or line; ``mask_literals`` hides any literal that is or holds a
password (through comments, in any string form); ``excerpt`` is a statement as a message
may quote it: masked, control characters escaped, cut.
"""

from __future__ import annotations

import re

from services.sqllex import Statement

_PASSWORD_CLAUSE = re.compile(
    r"(PASSWORD\s+)(?:[eE]'(?:[^'\\]|\\.|'')*'|'(?:[^']|'')*')", re.IGNORECASE
)
_PASSWORD_KEYWORD = re.compile(
    r"(password\s*=\s*)(?:''(?:(?!'')[^\n])*''|'(?:[^'\\]|\\.)*'|[^\s']+)", re.IGNORECASE
)


_URI_USERINFO = re.compile(r"(://[^/@\s:'\"]*:)[^/@\s'\"]*@")


def redact(sql: str) -> str:
    """A statement (or line) as messages, logs and reports may show it: role passwords
    (and their hashes, in any string form), user mapping passwords and passwords in
    connection strings hidden."""
    text = _PASSWORD_KEYWORD.sub(r"\1***", _PASSWORD_CLAUSE.sub(r"\1'***'", sql))
    return _URI_USERINFO.sub(r"\1***@", text)


_LITERAL = re.compile(
    r"[eE]'(?:[^'\\]|\\.|'')*'?|'(?:[^']|'')*'?|\$([A-Za-z_][A-Za-z0-9_]*)?\$.*?(?:\$\1\$|$)",
    re.S,
)


# PASSWORD (perhaps quoted, as an option's name), perhaps "=", perhaps comments, then the
# literal: the literal is the secret.
_BEFORE_PASSWORD = re.compile(r"\"?password\"?\s*(?:=\s*)?$", re.IGNORECASE)
_BEFORE_WINDOW = 512  # how far before a literal its PASSWORD may stand
_MASKED_PREFIX = 16384  # what of a statement a message may quote at most
_URI_SECRET = re.compile(r"://[^/@\s'\"]*:[^/@\s'\"]*@")


def _without_comments(text: str) -> str:
    """``text`` with its comments (nested ones too, as the server reads them) made one
    space each: what stands before a literal, whatever comments lie between."""
    out: list[str] = []
    i, n, depth = 0, len(text), 0
    while i < n:
        if text.startswith("/*", i):
            depth += 1
            i += 2
        elif depth and text.startswith("*/", i):
            depth -= 1
            i += 2
            if not depth:
                out.append(" ")
        elif depth:
            i += 1
        elif text.startswith("--", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
            out.append(" ")
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def mask_literals(sql: str) -> str:
    """A statement as messages quote it: a literal that follows PASSWORD (in any string
    form, through comments), holds the word password anywhere in its text (a connection
    string, a nested clause) or a URI's user:secret@ is hidden; other literals stay, to
    name what was found."""

    def mask(m: re.Match[str]) -> str:
        text = m.group()
        before = sql[max(0, m.start() - _BEFORE_WINDOW) : m.start()]
        if (
            "password" in text.lower()
            or _URI_SECRET.search(text)
            or ("password" in before.lower() and _BEFORE_PASSWORD.search(_without_comments(before)))
        ):
            return "$$***$$" if text.startswith("$") else "'***'"
        return text

    return _LITERAL.sub(mask, sql)


def excerpt(stmt: Statement, limit: int = 120) -> str:
    """A statement as a message may quote it: passwords masked, control characters
    escaped, whitespace folded, cut."""
    return _excerpt(stmt, limit)


def _excerpt(stmt: Statement, limit: int = 120) -> str:
    text = "".join(
        ch if ch.isprintable() else f"\\x{ord(ch):02x}"
        for ch in " ".join(
            mask_literals(stmt.text[:_MASKED_PREFIX].decode("utf-8", "replace")).split()
        )
    )
    return text if len(text) <= limit else text[: limit - 1] + "…"
