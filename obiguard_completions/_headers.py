"""Request header values checked before any I/O (pure functions).

HTTP/1.1 carries header values as bytes on one line; httpx encodes them as ASCII and
h11 refuses line breaks. Left to them, a bad value fails *during* the request, as a
connection error that is retried and whose text quotes the value (`Illegal header
value b'vk-obg-...\\n'`). Here every value is checked first, and a bad one raises
`RequestValidationError` naming the header, never showing the value:

* no control characters: CR, LF, NUL or any other below 0x20 (a tab is allowed), nor
  DEL (0x7f); CR/LF would split the header (injection), NUL ends it early;
* ASCII only: we do not guess an encoding for the gateway (httpx would raise a bare
  `UnicodeEncodeError`); JSON values (`config`, `metadata`) are sent with `\\uXXXX`
  escapes, so they never hit this rule;
* at most `MAX_HEADER_VALUE_BYTES` (8 KB, the common per-header limit of proxies and
  servers) per value;
* names are HTTP tokens.

Keys (`api_key`, `provider_api_key`) are stripped of surrounding whitespace instead of
refused: a key never contains whitespace, a trailing newline is the usual mark of a key
read from a file, and HTTP drops leading and trailing spaces of a value anyway.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from ._errors import RequestValidationError

__all__ = ["MAX_HEADER_VALUE_BYTES", "check_headers", "header_problem"]

MAX_HEADER_VALUE_BYTES = 8192
"""Longest accepted header value, in bytes."""

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_SHOWN_NAME = re.compile(r"[!-~]{1,100}")


def header_problem(value: str) -> str | None:
    """What is wrong with a header value, in words that never quote it; None if fine."""
    control = _CONTROL.search(value)
    if control is not None:
        char = control.group()
        if char in "\r\n":
            return "contains a line break (CR or LF)"
        if char == "\x00":
            return "contains a NUL character"
        return "contains a control character"
    if not value.isascii():
        return "contains a non-ASCII character (header values must be ASCII)"
    if len(value) > MAX_HEADER_VALUE_BYTES:
        return f"is {len(value)} bytes long (at most {MAX_HEADER_VALUE_BYTES} are allowed)"
    return None


def check_headers(headers: Mapping[str, str]) -> None:
    """Raise `RequestValidationError` for the first header whose name or value cannot
    be sent; the message names the header and never shows the value."""
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name):
            shown = repr(name) if _SHOWN_NAME.fullmatch(name) else "a header name"
            raise RequestValidationError(
                f"{shown} is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~)"
            )
        problem = header_problem(value)
        if problem is not None:
            raise RequestValidationError(
                f"the value of header {name!r} {problem}; it was not sent (value not shown)"
            )
