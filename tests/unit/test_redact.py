"""The one redaction for logs, errors and tracebacks."""

from __future__ import annotations

import logging

import pytest

from talkvid_ops import redact as redaction


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql+psycopg2://alice:p@ss:Secret@127.0.0.1:1/db", "postgresql+psycopg2://alice:***@127.0.0.1:1/db"),
        ("could not parse 'postgresql://bob:pw1234@db.internal/talkvid'", "could not parse 'postgresql://bob:***@db.internal/talkvid'"),
        ("redis://:hunter22@redis:6379/0", "redis://:***@redis:6379/0"),
        ("https://example.com/path@v2 http://user@host/x", "https://example.com/path@v2 http://user@host/x"),  # no password: unchanged
    ],
)
def test_url_passwords_are_hidden_whole(text, expected):
    assert redaction.redact(text) == expected


def test_registered_values_are_hidden_anywhere_also_url_quoted():
    redaction.register_secret("canary-cookie-7f3a")
    redaction.register_secret("pw")  # too short to register: it would mask ordinary words
    assert redaction.redact("Cookie: SID=canary-cookie-7f3a; lang=en") == "Cookie: SID=***; lang=en"
    assert redaction.redact("q=canary%2Dcookie-7f3a") == "q=canary%2Dcookie-7f3a"  # quote() keeps '-': same text
    redaction.register_secret("a b/c@d")
    assert "a%20b%2Fc%40d" not in redaction.redact("x=a%20b%2Fc%40d")
    assert redaction.redact("a password pw here") == "a password pw here"


def test_cookie_file_values_are_registered():
    redaction.register_secrets_of(
        [
            "# Netscape HTTP Cookie File\n",
            ".youtube.com\tTRUE\t/\tTRUE\t0\tSID\tcanary-sid-value-91\n",
            "#HttpOnly_.youtube.com\tTRUE\t/\tTRUE\t0\tHSID\tcanary-httponly-92\r\n",  # curl's mark of an HttpOnly cookie
        ]
    )
    assert redaction.redact("sent canary-sid-value-91 and canary-httponly-92") == "sent *** and ***"


def test_the_log_filter_redacts_messages_arguments_and_tracebacks():
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(self.format(record))

    logger = logging.getLogger("talkvid.test-redact")
    handler = Keep()
    logger.addHandler(handler)
    redaction.install(logger)
    try:
        logger.warning("connecting to %s", "postgresql://u:topsecret99@h/db")
        try:
            raise ValueError("bad url postgresql://u:topsecret99@h/db")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert len(records) == 2
    assert "topsecret99" not in "".join(records)
    assert "postgresql://u:***@h/db" in records[0]
    assert "ValueError: bad url postgresql://u:***@h/db" in records[1]


def test_a_urls_password_is_registered_also_when_the_url_does_not_parse():
    redaction.register_url_password("postgresql+psycopg2://alice:p@ss:W0rd-9x@127.0.0.1:1/db")
    redaction.register_url_password("postgresql://bob:pct%25pass99@h/db")
    assert redaction.redact("port 'p@ss:W0rd-9x@127.0.0.1:1'") == "port '***@127.0.0.1:1'"
    assert redaction.redact("pct%pass99 and pct%25pass99") == "*** and ***"
    redaction.register_url_password("sqlite:////data/catalog.sqlite")  # no password: nothing registered
    assert redaction.redact("sqlite:////data/catalog.sqlite") == "sqlite:////data/catalog.sqlite"
