"""HTTP header fields: parsed once from a header block, looked up without regard to case, and
written as the JSON object the ``req_headers``/``resp_headers`` columns hold.

>>> h = parse_fields("Host: example.com\\r\\nAccept: */*\\r\\naccept: text/html\\r\\n\\r\\n")
>>> h["accept"], h.to_json()
('*/*, text/html', '{"Host":"example.com","Accept":"*/*, text/html"}')
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

__all__ = ["Headers", "NO_FIELDS", "parse_fields"]

class Headers:
    """Header fields in the order they came, with case-insensitive lookup.

    A name that appears more than once reads as its values joined by ``", "``.

    >>> h = Headers([("Host", "x"), ("Accept", "a"), ("accept", "b")])
    >>> h["ACCEPT"], h.get("missing"), len(h)
    ('a, b', None, 3)
    >>> h.to_json()
    '{"Host":"x","Accept":"a, b"}'
    """

    __slots__ = ("items", "_index", "_plain")

    def __init__(self, items: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
                 index: dict[str, str] | None = None, *, plain: bool = False) -> None:
        self.items = tuple(items)
        self._plain = plain  # known: no name or value needs escaping in JSON
        if index is None:
            index = {}
            for name, value in self.items:
                key = name.lower()
                index[key] = value if key not in index else f"{index[key]}, {value}"
        self._index = index

    def get(self, name: str, default: str | None = None) -> str | None:
        return self._index.get(name.lower(), default)

    def __getitem__(self, name: str) -> str:
        return self._index[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Headers) and self.items == other.items

    def __hash__(self) -> int:
        return hash(self.items)

    def __repr__(self) -> str:
        return f"Headers({list(self.items)!r})"

    def to_json(self, extra: Headers | None = None) -> str:
        """A JSON object (Pixie's ``req_headers`` form); repeated names are joined, ``extra``
        (a message's trailers) is merged in after the headers."""
        items = self.items
        if extra is not None and extra.items:
            items += extra.items
            index = Headers(items)._index
        else:
            index = self._index
            if self._plain and len(index) == len(items):
                return "{" + ",".join([f'"{n}":"{v}"' for n, v in items]) + "}"
        if not items:
            return "{}"
        if len(index) == len(items):
            return _json(dict(items))
        names: dict[str, str] = {}
        for name, _ in items:
            names.setdefault(name.lower(), name)
        return _json({names[k]: v for k, v in index.items()})


NO_FIELDS = Headers()
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False).encode


# What JSON must escape in a name or value (CR and LF only occur as line ends, checked apart).
_ESCAPED = re.compile(r'[\x00-\x09\x0b\x0c\x0e-\x1f"\\\x7f]')


def parse_fields(text: str) -> Headers:
    """Header fields of a header block (start line excluded, blank line included); malformed
    lines are skipped, folded lines joined."""
    crlf = text.count("\r\n")
    lines = text.split("\r\n") if crlf == text.count("\n") else text.split("\n")
    items: list[tuple[str, str]] = []
    index: dict[str, str] = {}
    for line in lines:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name[0] in " \t" or name[-1] in " \t":
            return _fields_slowly(text)
        value = value.strip()
        items.append((name, value))
        index[name.lower()] = value
    plain = crlf == text.count("\r") and _ESCAPED.search(text) is None
    return Headers(items, index if len(index) == len(items) else None, plain=plain)


def _fields_slowly(text: str) -> Headers:
    """Tolerant parsing: bare LFs, stray CRs, folded lines, lines that are not fields."""
    items: list[tuple[str, str]] = []
    index: dict[str, str] = {}
    folded = False
    for line in text.split("\n"):
        if not line or line == "\r":
            continue
        if line[0] in " \t":
            if items:  # obsolete line folding: a continuation of the previous value
                items[-1] = (items[-1][0], f"{items[-1][1]} {line.strip()}")
                folded = True
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name[-1] in " \t":
            continue
        value = value.strip()
        items.append((name, value))
        key = name.lower()
        index[key] = value if key not in index else f"{index[key]}, {value}"
    return Headers(items, None if folded else index)
