"""Text from outside (pod logs, object keys, names) made safe to show and to archive.

A terminal obeys what it is sent: an escape sequence in a backup job's log line can set
the window title, write the clipboard (OSC 52) or clear the screen of whoever reads the
log. Every edge where outside text reaches a terminal or an archived document passes it
through ``safe_text``: each C0 and C1 control character (tab aside), DEL, and the
Unicode controls that reorder or break lines (bidi overrides, U+2028/U+2029) become a
visible escape such as ``\\x1b``, so an escape sequence is shown as text, never obeyed.

A line costs memory and time linear in its length up to a bound: ``bounded_lines``
splits a byte stream into lines keeping at most ``LINE_LIMIT`` characters of each (the
rest is counted, not kept) and ``safe_line`` cuts a decoded line the same way; a cut
line ends in a marker saying how much was cut.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

LINE_LIMIT = 16_384  # characters of a line kept (the marker included)
_MARKER_ROOM = 40  # room kept for the marker, so a cut line is never longer than the limit

_UNICODE_CONTROLS = (
    *range(0x00, 0x20),
    *range(0x7F, 0xA0),
    0x061C,  # arabic letter mark
    0x200E,  # left-to-right mark
    0x200F,  # right-to-left mark
    0x2028,  # line separator
    0x2029,  # paragraph separator
    *range(0x202A, 0x202F),  # bidi embeddings and overrides
    *range(0x2066, 0x206A),  # bidi isolates
)


def _visible(code: int) -> str:
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


_TABLE = {code: _visible(code) for code in _UNICODE_CONTROLS}
_UNSAFE = re.compile("[" + "".join(re.escape(chr(c)) for c in _UNICODE_CONTROLS) + "]")


def safe_text(text: str, keep: str = "\t") -> str:
    """``text`` with every control character shown as an escape (``\\x1b``), except those
    in ``keep`` (tab by default; pass ``"\\t\\n"`` for text that is several lines)."""
    if _UNSAFE.search(text) is None:
        return text  # the usual case: nothing to do, no copy
    if keep:
        table = {code: rep for code, rep in _TABLE.items() if chr(code) not in keep}
        return text.translate(table)
    return text.translate(_TABLE)


def cut_marker(count: int, unit: str) -> str:
    return f" … [{count:,} {unit} cut]"


def safe_line(text: str, limit: int = LINE_LIMIT) -> str:
    """One line as it may be shown or archived: control characters escaped, then at most
    ``limit`` characters (a longer one is cut, ending in a marker saying how much)."""
    text = safe_text(text)
    if len(text) > limit:
        keep = max(0, limit - _MARKER_ROOM)
        text = text[:keep] + cut_marker(len(text) - keep, "characters")
    return text


def bounded_lines(chunks: Iterable[bytes], limit: int = LINE_LIMIT) -> Iterator[str]:
    """The lines of a byte stream (UTF-8; anything else replaced), each at most ``limit``
    characters: of a longer line only its start is kept, and the bytes past it are
    counted while they stream by, so a line of any length costs O(limit) memory and
    time linear in its length. Line ends are ``\\n`` (a ``\\r`` before it is dropped).
    The text is not neutralized: callers that show it use ``safe_text``."""
    keep = max(0, limit - _MARKER_ROOM)
    parts: list[bytes] = []
    kept = 0  # bytes of the current line held in parts
    cut = 0  # bytes of the current line dropped
    cr = False  # the line's last byte so far is a \r (half of a \r\n line end)

    def line() -> str:
        # A \r just before the \n is the line end's, not the line's: dropped (or, when it
        # was among the bytes cut, not counted).
        data = b"".join(parts)
        if cut:
            return data.decode("utf-8", "replace") + cut_marker(cut - cr, "bytes")
        return (data[:-1] if cr else data).decode("utf-8", "replace")

    for chunk in chunks:
        start = 0
        size = len(chunk)
        while start < size:
            end = chunk.find(b"\n", start)
            stop = size if end < 0 else end
            if stop > start:
                cr = chunk[stop - 1] == 13
            room = keep - kept
            if room > 0:
                take = min(room, stop - start)
                if take:
                    parts.append(chunk[start : start + take])
                    kept += take
                cut += stop - start - take
            else:
                cut += stop - start
            if end < 0:
                break
            yield line()
            parts, kept, cut, cr = [], 0, 0, False
            start = end + 1
    if parts or cut:
        cr = False  # no \n came: a last \r is the line's own
        yield line()
