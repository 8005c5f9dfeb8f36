"""One redaction for every log line, error message and traceback we print or store.

Two kinds of secret are hidden:
- the password of any URL (`scheme://user:password@host`): the user stays, the password becomes `***`. The user
  info runs to the last `@` of the authority, so a password holding `@` or `:` is hidden whole;
- registered values: secrets we know by value at run time (cookie file contents, connection passwords, the catalog
  URL's password), hidden wherever they appear, also inside text that is not a URL.

`install()` puts the filter on the root logger's handlers and on `talkvid` loggers, so libraries' messages pass
through it as well.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections.abc import Iterable

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values would mask ordinary words
_URL_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^\s/?#]*)@(?=[^\s@/?#]*(?:[/?#\s'\"]|$))")

_lock = threading.Lock()
_secrets: set[str] = set()


def register_secret(*values: str | None) -> None:
    """Hide these values (and their URL-quoted forms) from everything redacted from now on."""
    from urllib.parse import quote

    with _lock:
        for value in values:
            if value and len(value) >= MIN_SECRET_LENGTH:
                _secrets.add(value)
                _secrets.add(quote(value, safe=""))


def register_secrets_of(lines: Iterable[str]) -> None:
    """Register each value field of a Netscape cookies file (the cookie values are the secrets), HttpOnly cookies
    (`#HttpOnly_` lines) included."""
    for line in lines:
        fields = line.rstrip("\r\n").split("\t")
        if len(fields) >= 7 and (not line.startswith("#") or line.startswith("#HttpOnly_")):
            register_secret(fields[6])


def _hide_userinfo(match: re.Match) -> str:
    user, sep, _password = match.group("userinfo").partition(":")
    return f"{match.group('scheme')}{user}{':' + MASK if sep else ''}@"


def redact(text: str) -> str:
    """`text` with URL passwords and registered secrets replaced by `***`."""
    if not text:
        return text
    text = _URL_USERINFO.sub(_hide_userinfo, text)
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redacted_exception(exc: BaseException, with_traceback: bool = False) -> str:
    """One line naming the error (or the whole traceback), redacted."""
    if with_traceback:
        return redact("".join(traceback.format_exception(exc)))
    return redact(f"{type(exc).__name__}: {exc}")


def register_url_password(url: str | None) -> None:
    """Hide the password of `url` (a database URL, parseable or not) wherever it appears from now on."""
    from urllib.parse import unquote

    match = _URL_USERINFO.search(url or "")
    _user, sep, password = match.group("userinfo").partition(":") if match else ("", "", "")
    if sep:
        register_secret(password, unquote(password))


class RedactingFilter(logging.Filter):
    """Formats a record's message once, redacted, so neither its text nor its arguments leak a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string is the library's problem; keep its raw text, redacted
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redacted_exception(record.exc_info[1], with_traceback=True)
            record.exc_info = None
        return True


FILTER = RedactingFilter()


def install(*loggers: logging.Logger) -> None:
    """Redact what the given loggers (default: root and `talkvid`) and all their handlers emit."""
    for logger in loggers or (logging.getLogger(), logging.getLogger("talkvid")):
        if FILTER not in logger.filters:
            logger.addFilter(FILTER)
        for handler in logger.handlers:
            if FILTER not in handler.filters:
                handler.addFilter(FILTER)
