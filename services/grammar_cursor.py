"""Reading one statement's tokens: the ``Cursor`` the grammar's judges walk with.

Each judge consumes words, names, roles and punctuation through it and refuses with the
statement's line and a masked excerpt (``Cursor.refuse``).
"""

from __future__ import annotations

from services.grammar_verdict import Refused
from services.redact import excerpt
from services.sqllex import NUMBER, PUNCT, QIDENT, STRING, WORD, Statement, Token

# Keywords that name roles of the target (or all of them) where a role name may stand.
ROLE_KEYWORDS = frozenset(
    {"all", "current_user", "session_user", "current_role", "public", "none", "user"}
)


class Cursor:
    def __init__(self, stmt: Statement) -> None:
        self.stmt = stmt
        self.tokens = stmt.tokens
        self.i = 0

    def refuse(self, reason: str) -> Refused:
        return Refused(self.stmt.line, reason + ": " + excerpt(self.stmt))

    def peek(self, k: int = 0) -> Token | None:
        j = self.i + k
        return self.tokens[j] if j < len(self.tokens) else None

    def word(self, *options: str) -> str | None:
        tok = self.peek()
        if tok is None or tok.kind != WORD or (options and tok.value not in options):
            return None
        self.i += 1
        return tok.value

    def words(self, *seq: str) -> bool:
        """Consume the exact word sequence if it is next."""
        for k, w in enumerate(seq):
            tok = self.peek(k)
            if tok is None or tok.kind != WORD or tok.value != w:
                return False
        self.i += len(seq)
        return True

    def punct(self, value: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == PUNCT and tok.value == value:
            self.i += 1
            return True
        return False

    def name(self) -> str:
        tok = self.peek()
        if tok is None or tok.kind not in (WORD, QIDENT):
            raise self.refuse("a name was expected")
        self.i += 1
        return tok.value

    def role(self, *, public: bool = False) -> str:
        """A role's name: never one of the keywords that stand for roles (ALL,
        CURRENT_USER, ...), which pg_dumpall would have quoted; PUBLIC where asked."""
        tok = self.peek()
        if tok is not None and tok.kind == WORD and public and tok.value == "public":
            self.i += 1
            return "public"
        if tok is not None and tok.kind == WORD and tok.value in ROLE_KEYWORDS:
            raise self.refuse(
                f"{tok.value.upper()} stands for roles of the target, not a role the dump names"
            )
        return self.name()

    def roles(self, *, public: bool = False) -> tuple[str, ...]:
        out = [self.role(public=public)]
        while self.punct(","):
            out.append(self.role(public=public))
        return tuple(out)

    def qualified(self) -> tuple[str | None, str]:
        first = self.name()
        if self.punct("."):
            return first, self.name()
        return None, first

    def names(self) -> tuple[str, ...]:
        out = [self.name()]
        while self.punct(","):
            out.append(self.name())
        return tuple(out)

    def at_end(self) -> bool:
        return self.i == len(self.tokens) - 1 and self.punct_is(";")

    def punct_is(self, value: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.kind == PUNCT and tok.value == value

    def end(self) -> None:
        if not self.at_end():
            raise self.refuse("unexpected text")

    def literal_value(self) -> str:
        tok = self.peek()
        if tok is None or tok.kind not in (STRING, NUMBER, WORD, QIDENT):
            raise self.refuse("a value was expected")
        self.i += 1
        return tok.value

    def rest(self) -> list[Token]:
        return self.tokens[self.i :]


def one_name(t: Cursor, what: str) -> str:
    name = t.name()
    if t.punct_is(","):
        raise t.refuse(f"{what} with a list of databases (pg_dump names one)")
    return name
