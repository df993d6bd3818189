"""Where a statement of a SQL dump ends, and what its tokens are: PostgreSQL's own lexer rules.

A restore never hands a dump to a script interpreter: pgdeck cuts the dump into statements
itself and judges each one (``services.grammar``) before sending it. The cut must agree with
the server's lexer, or a statement could hide another: these rules follow psql's
``psqlscan.l`` (which follows the backend's ``scan.l``) for comments (nested ``/* */``),
strings (standard, ``E''`` with backslash escapes, ``U&''``, ``B''``, ``X''``, continued
across a newline), quoted identifiers, dollar quotes, parentheses and the ``BEGIN ATOMIC ...
END`` bodies of SQL-standard functions. A backslash outside quotes is a psql meta-command.

Two decisions keep the server's lexer and this one in step without asking the server:
``standard_conforming_strings`` is always on (the loader sets it on every connection and
the grammar refuses a dump that turns it off), and only ASCII-safe (server) encodings are
admitted, so no byte of a multi-byte character can look like a quote or a backslash.

The lexer takes the dump a line at a time (lines keep their ``\\n``) and carries its state
from line to line, so a statement may span any number of lines and chunks; it costs time
linear in the input and holds only the statement being read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Token kinds
WORD = "word"  # identifier or keyword, value lower-cased
QIDENT = "qident"  # "quoted identifier", value unescaped
STRING = "string"  # '...' of any kind; value unescaped where that is certain
DOLLAR = "dollar"  # $tag$...$tag$, value is the body
NUMBER = "number"
PUNCT = "punct"  # ( ) , ; . [ ] and operators
PARAM = "param"

_NORMAL = re.compile(
    rb"""
     (?P<ws>[ \t\n\r\f\v]+)
    |(?P<lc>--[^\n\r]*)
    |(?P<bc>/\*)
    |(?P<xb>[bB]')
    |(?P<xh>[xX]')
    |(?P<xe>[eE]')
    |(?P<xus>[uU]&')
    |(?P<xui>[uU]&")
    |(?P<xq>')
    |(?P<xd>")
    |(?P<dolq>\$(?:[A-Za-z\x80-\xff_][A-Za-z\x80-\xff_0-9]*)?\$)
    |(?P<param>\$[0-9]+)
    |(?P<ident>[A-Za-z\x80-\xff_][A-Za-z\x80-\xff_0-9$]*)
    |(?P<num>(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)
    |(?P<bs>\\)
    |(?P<semi>;)
    |(?P<lp>\()
    |(?P<rp>\))
    |(?P<cast>::)
    |(?P<op>(?:(?!/\*|--)[~!@\#^&|`?+\-*/%<>=])+)
    |(?P<other>.)
    """,
    re.X | re.S,
)
_COMMENT_EDGE = re.compile(rb"/\*|\*/")
_XE_STOP = re.compile(rb"['\\]")
# After a closing quote: horizontal space or a -- comment, a newline, then any space or
# comment lines, then a quote, continue the same string (SQL's literal concatenation).
_HORIZ = re.compile(rb"(?:[ \t\f\v]+|--[^\n\r]*)*")
_SPECIAL = re.compile(rb"(?:[ \t\n\r\f\v]+|--[^\n\r]*[\n\r])*")

# Lexer modes
_INITIAL, _XC, _XQ, _XE, _XD, _XUI, _XUS, _XB, _XH, _XDOLQ, _XQS = range(11)
_STRING_MODES = {_XQ: b"", _XE: b"E", _XUS: b"U&", _XB: b"B", _XH: b"X"}


def size_text(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n} bytes"


class LexError(Exception):
    """The text cannot be cut as PostgreSQL would cut it (an unterminated construct)."""


@dataclass(slots=True)
class Token:
    kind: str
    value: str  # lower-cased for words; unescaped for quoted identifiers and strings
    prefix: str = ""  # E, U&, B, X for strings; the tag for dollar strings
    depth: int = 0  # parenthesis depth at which the token starts
    offset: int = -1  # where it starts in the statement's text (words and quoted names)
    length: int = 0


@dataclass(slots=True)
class Statement:
    text: bytes  # exactly what is sent, from the first token to the ';' included
    tokens: list[Token]
    line: int  # line number of its first token (1-based)

    def words(self, n: int) -> list[str]:
        """The first ``n`` tokens as lower-case words ('' for any other token)."""
        return [t.value if t.kind == WORD else "" for t in self.tokens[:n]]


@dataclass(slots=True)
class MetaCommand:
    text: str  # the whole line without its newline
    line: int
    inline: bool = False  # not alone at a line's start between statements: never pg_dump's


@dataclass
class Lexer:
    """Feed lines; collect complete statements and meta-commands in order.

    ``feed`` returns the items completed by that line. ``max_statement`` bounds the size
    of one statement (bytes); past it ``LexError`` is raised.
    """

    max_statement: int = 64 << 20
    # How the session reads the bytes of names and strings (its client_encoding, as
    # DumpReader follows it): names are compared with the target's in these characters.
    codec: str = "utf-8"
    errors: str = "strict"
    max_tokens: int = 200_000  # ~120 bytes each: a statement's tokens stay within ~25 MB
    line_no: int = 0
    _mode: int = _INITIAL
    _depth: int = 0  # parentheses
    _begin: int = 0  # BEGIN ... END inside CREATE FUNCTION/PROCEDURE bodies
    _idents: list[str] = field(default_factory=list)  # first words, for the BEGIN ATOMIC rule
    _ident_count: int = 0
    _xc_depth: int = 0
    _dolq: bytes = b""
    _before_qs: int = _INITIAL  # the string mode a closing quote may continue
    _qs_newline: bool = False
    _parts: list[bytes] = field(default_factory=list)  # text of the statement so far
    _size: int = 0
    _tokens: list[Token] = field(default_factory=list)
    _start_line: int = 0
    _lit: list[bytes] = field(default_factory=list)  # the literal being read
    _lit_prefix: bytes = b""
    _lit_depth: int = 0
    _lit_offset: int = -1
    _lit_end: int = -1
    _start: int = 0

    @property
    def between_statements(self) -> bool:
        """Nothing of a statement has been read (only space and comments since the last)."""
        return self._mode == _INITIAL and not self._tokens

    @property
    def pending_line(self) -> int | None:
        """The first line of a statement begun and not finished, if any."""
        return self._start_line if (self._tokens or self._mode != _INITIAL) else None

    def feed(self, line: bytes) -> list[Statement | MetaCommand]:
        self.line_no += 1
        out: list[Statement | MetaCommand] = []
        if line[:1] == b"\\" and self.between_statements:
            out.append(MetaCommand(line.rstrip(b"\r\n").decode("utf-8", "replace"), self.line_no))
            return out
        pos = 0
        end = len(line)
        self._start = 0  # where the current statement's text in this line starts
        while pos < end:
            mode = self._mode
            if mode == _INITIAL:
                m = _NORMAL.match(line, pos)
                assert m is not None  # (?P<other>.) matches any byte
                kind = m.lastgroup
                nxt = m.end()
                if kind == "ws" or kind == "lc":
                    if not self._tokens and not self._parts:
                        self._start = nxt  # leading space and comments are not sent
                    pos = nxt
                    continue
                if not self._tokens and not self._parts:
                    self._start_line = self.line_no
                    self._start = pos
                if kind == "semi":
                    self._token(PUNCT, ";")
                    if self._depth == 0 and self._begin == 0:
                        self._take(line[self._start : nxt])
                        out.append(self._finish())
                        self._start = nxt
                    pos = nxt
                    continue
                if kind == "bc":
                    self._mode, self._xc_depth = _XC, 0
                elif kind == "xq":
                    self._open(_XQ, b"")
                elif kind == "xe":
                    self._open(_XE, b"E")
                elif kind == "xus":
                    self._open(_XUS, b"U&")
                elif kind == "xb":
                    self._open(_XB, b"B")
                elif kind == "xh":
                    self._open(_XH, b"X")
                elif kind == "xd":
                    self._open(_XD, b"", self._at(pos))
                elif kind == "xui":
                    self._open(_XUI, b"U&", self._at(pos))
                elif kind == "dolq":
                    self._dolq = m.group()
                    self._open(_XDOLQ, m.group())
                elif kind == "ident":
                    self._word(m.group(), self._at(pos))
                elif kind == "lp":
                    self._token(PUNCT, "(")
                    self._depth += 1
                elif kind == "rp":
                    if self._depth > 0:
                        self._depth -= 1
                    self._token(PUNCT, ")")
                elif kind == "num":
                    self._token(NUMBER, m.group().decode())
                elif kind == "param":
                    self._token(PARAM, m.group().decode())
                elif kind == "bs":
                    # A psql meta-command inside or after a statement: never written by
                    # pg_dump; the caller refuses it with the line it is on.
                    out.append(
                        MetaCommand(
                            line[pos:].rstrip(b"\r\n").decode("utf-8", "replace"),
                            self.line_no,
                            inline=True,
                        )
                    )
                    self._reset()
                    return out
                else:  # cast, op, other
                    self._token(PUNCT, m.group().decode("latin-1"))
                pos = nxt
                continue
            if mode == _XC:
                m = _COMMENT_EDGE.search(line, pos)
                if m is None:
                    pos = end
                elif m.group() == b"/*":
                    self._xc_depth += 1
                    pos = m.end()
                else:
                    pos = m.end()
                    if self._xc_depth <= 0:
                        self._mode = _INITIAL
                    else:
                        self._xc_depth -= 1
                continue
            if mode == _XDOLQ:
                i = line.find(self._dolq, pos)
                if i < 0:
                    self._lit.append(line[pos:])
                    pos = end
                else:
                    self._lit.append(line[pos:i])
                    pos = i + len(self._dolq)
                    self._close_literal()
                    self._mode = _INITIAL
                continue
            if mode in (_XQ, _XUS, _XB, _XH, _XD, _XUI):
                q = b'"' if mode in (_XD, _XUI) else b"'"
                i = line.find(q, pos)
                if i < 0:
                    self._lit.append(line[pos:])
                    pos = end
                    continue
                self._lit.append(line[pos:i])
                if mode not in (_XB, _XH) and line[i + 1 : i + 2] == q:
                    self._lit.append(q)  # doubled: a quote inside
                    pos = i + 2
                    continue
                pos = i + 1
                if mode in (_XD, _XUI):
                    self._lit_end = self._at(pos)
                    self._close_literal()
                    self._mode = _INITIAL
                else:
                    self._before_qs, self._qs_newline = mode, False
                    self._mode = _XQS
                continue
            if mode == _XE:
                m = _XE_STOP.search(line, pos)
                if m is None:
                    self._lit.append(line[pos:])
                    pos = end
                    continue
                i = m.start()
                if line[i : i + 1] == b"\\":
                    self._lit.append(line[pos : i + 2])
                    pos = i + 2
                    continue
                self._lit.append(line[pos:i])
                if line[i + 1 : i + 2] == b"'":
                    self._lit.append(b"''")
                    pos = i + 2
                    continue
                pos = i + 1
                self._before_qs, self._qs_newline = _XE, False
                self._mode = _XQS
                continue
            # _XQS: does the string go on after a newline?
            m = _HORIZ.match(line, pos)
            pos = m.end() if m else pos
            if not self._qs_newline:
                if pos < end and line[pos : pos + 1] in (b"\n", b"\r"):
                    self._qs_newline = True
                    pos += 1
                else:
                    self._end_string()
                    continue
            m2 = _SPECIAL.match(line, pos)
            pos = m2.end() if m2 else pos
            if pos >= end:
                continue  # the next line decides
            if line[pos : pos + 1] == b"'":
                self._mode = self._before_qs  # continued: the same kind of string
                pos += 1
                continue
            self._end_string()
        # the line ended inside a statement: keep its text
        if self._tokens or self._mode != _INITIAL:
            self._take(line[self._start :])
        return out

    def finish(self) -> None:
        """At the end of the input: anything unfinished is an error."""
        if self._mode == _XQS:
            self._end_string()
        if self._tokens or self._mode != _INITIAL:
            what = {
                _XC: "a /* comment",
                _XQ: "a quoted string",
                _XE: "a quoted string",
                _XUS: "a quoted string",
                _XB: "a bit string",
                _XH: "a hex string",
                _XD: "a quoted identifier",
                _XUI: "a quoted identifier",
                _XDOLQ: "a dollar-quoted string",
            }.get(self._mode, "a statement without its ';'")
            raise LexError(f"the input ends inside {what} begun at line {self._start_line}")

    # --- internals ----------------------------------------------------------------------
    def _decode(self, raw: bytes, *, literal: bool = False) -> str:
        """A name strictly (it must be read as the server reads it: a byte that is not a
        character there could be one to the server); a literal's text keeps bytes
        Python's codec lacks (PostgreSQL's tables define some that Python's do not)."""
        try:
            return raw.decode(self.codec, "surrogateescape" if literal else self.errors)
        except UnicodeDecodeError:
            raise LexError(
                f"a name with bytes that are not valid in the session's client encoding "
                f"({self.codec})"
            ) from None

    def _at(self, pos: int) -> int:
        """The offset in the statement's text of byte ``pos`` of the current line."""
        return self._size + pos - self._start

    def _open(self, mode: int, prefix: bytes, offset: int = -1) -> None:
        if not self._tokens and not self._parts and self._start_line == 0:
            self._start_line = self.line_no
        self._mode = mode
        self._lit = []
        self._lit_prefix = prefix
        self._lit_depth = self._depth
        self._lit_offset = offset

    def _end_string(self) -> None:
        self._close_literal()
        self._mode = _INITIAL

    def _close_literal(self) -> None:
        body = b"".join(self._lit)
        self._lit = []
        mode = self._mode if self._mode != _XQS else self._before_qs
        if mode in (_XD, _XUI):
            value = self._decode(body.replace(b'""', b'"'))
            self._tokens.append(
                Token(
                    QIDENT,
                    value,
                    self._lit_prefix.decode(),
                    self._lit_depth,
                    self._lit_offset,
                    self._lit_end - self._lit_offset,
                )
            )
        elif mode == _XDOLQ:
            self._tokens.append(
                Token(
                    DOLLAR,
                    self._decode(body, literal=True),
                    self._lit_prefix.decode(),
                    self._lit_depth,
                )
            )
        else:
            raw = body.replace(b"''", b"'") if mode != _XE else body
            self._tokens.append(
                Token(
                    STRING,
                    self._decode(raw, literal=True),
                    _STRING_MODES.get(mode, b"").decode(),
                    self._lit_depth,
                )
            )
        self._count()

    def _token(self, kind: str, value: str) -> None:
        self._tokens.append(Token(kind, value, "", self._depth))
        self._count()

    def _count(self) -> None:
        n = len(self._tokens)
        if n == 1:
            self._start_line = self._start_line or self.line_no
        elif n > self.max_tokens:
            raise LexError(
                f"the statement begun at line {self._start_line} has more than "
                f"{self.max_tokens:,} tokens"
            )

    def _word(self, raw: bytes, offset: int) -> None:
        # Unquoted names fold to lower case in ASCII only, as the server folds them in a
        # multi-byte encoding.
        word = self._decode(raw.lower())
        # psql's rule for SQL-standard function bodies: in CREATE [OR REPLACE]
        # FUNCTION/PROCEDURE, BEGIN ... END (and CASE ... END inside it) hold semicolons.
        if self._ident_count < 4:
            self._idents.append(
                word[0] if word in ("create", "function", "procedure", "or", "replace") else ""
            )
        self._ident_count += 1
        ids = self._idents + [""] * (4 - len(self._idents))
        if (
            ids[0] == "c"
            and (ids[1] in ("f", "p") or (ids[1] == "o" and ids[2] == "r" and ids[3] in ("f", "p")))
            and self._depth == 0
        ):
            if word == "begin":
                self._begin += 1
            elif word == "case":
                if self._begin >= 1:
                    self._begin += 1
            elif word == "end" and self._begin > 0:
                self._begin -= 1
        self._tokens.append(Token(WORD, word, "", self._depth, offset, len(raw)))
        self._count()

    def _take(self, text: bytes) -> None:
        if not text:
            return
        self._parts.append(text)
        self._size += len(text)
        if self._size > self.max_statement:
            raise LexError(
                f"the statement begun at line {self._start_line} is longer than "
                f"{size_text(self.max_statement)}"
            )

    def _finish(self) -> Statement:
        stmt = Statement(b"".join(self._parts), self._tokens, self._start_line)
        self._reset()
        return stmt

    def _reset(self) -> None:
        self._parts = []
        self._size = 0
        self._tokens = []
        self._idents = []
        self._ident_count = 0
        self._depth = 0
        self._begin = 0
        self._start_line = 0
        self._mode = _INITIAL
