"""What a crawl failure means for what to do next: yt-dlp's errors sorted into the catalog's `ErrorClass`.

- permanent: the item is gone or never will be downloadable from here (unavailable, private, removed, terminated,
  404/410, unsupported URL, geo-blocked, members-only). Recorded, never retried.
- throttled: the site is limiting us (HTTP 429, bot checks, captcha, YouTube's session rate limit). The whole
  source is paused with an exponential back-off; retrying at once would only deepen the block.
- transient: anything else (timeouts, resets, 5xx, short reads, expired media URLs). yt-dlp retries within the
  run; the next runs retry with a growing delay, up to a limit.
Three more classes come from our own checks, not from yt-dlp: `media` (the file is unreadable or truncated),
`policy` (the item does not meet the source's settings: too short a height, too long, wrong language) and `setup`
(the source itself cannot be used as it is set up: a URL list that is not text, a missing cookies file or folder;
the user fixes it, and every run tries again).
"""

from __future__ import annotations

import email.utils
import re
import time
from dataclasses import dataclass

from talkvid_ops.catalog.status import ErrorClass

MAX_MESSAGE_CHARS = 2000
MAX_BODY_BYTES = 64 * 1024

# Checked in this order: the bot check mentions "Sign in", as do private videos, so throttling comes first.
_THROTTLED = [
    r"confirm you[’']re not a bot",
    r"HTTP Error 429",
    r"Too Many Requests",
    r"rate-limited",
    r"This content isn[’']t available, try again later",
    r"captcha",
    r"unusual traffic from your computer network",
    r"anti-bot challenge",
]
_PERMANENT = [
    r"Video unavailable",
    r"This video is (?:no longer|not) available",
    r"This video is unavailable",
    r"Private video",
    r"This video is private",
    r"has been removed",
    r"has been terminated",
    r"account .* (?:terminated|closed)",
    r"violat\w+ YouTube'?s",
    r"blocked it (?:in your country )?on copyright grounds",
    r"copyright claim",
    r"not (?:made this video )?available in your country",
    r"The uploader has not made this video available",
    r"members-only",
    r"Join this channel",
    r"Premium members",
    r"DRM protected",
    r"confirm your age",
    r"age-restricted",
    r"This (?:channel|playlist) does not exist",
    r"The playlist does not exist",
    r"Unsupported URL",
    r"HTTP Error 40[14]",
    r"HTTP Error 410",
    r"Requested format is not available",
]
_THROTTLED_RE = re.compile("|".join(_THROTTLED), re.IGNORECASE)
_PERMANENT_RE = re.compile("|".join(_PERMANENT), re.IGNORECASE)
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Classified:
    """A failure with its class, a one-line message for the catalog, and the server's Retry-After when given."""

    error_class: ErrorClass
    message: str
    retry_after_s: float | None = None


def clean_message(message: str) -> str:
    """yt-dlp's message without colours, carriage returns or the `ERROR:` prefix, on one bounded line."""
    text = _ANSI_RE.sub("", message).replace("\r", "").strip()
    text = re.sub(r"^(?:ERROR:\s*)+", "", text)
    text = " ".join(text.split())
    return text[:MAX_MESSAGE_CHARS]


def classify_message(message: str, body: str = "") -> ErrorClass:
    """The class of an error from its message and, when there was one, the body of the HTTP error response."""
    if _THROTTLED_RE.search(message) or (body and _THROTTLED_RE.search(body)):
        return ErrorClass.THROTTLED
    if _PERMANENT_RE.search(message):
        return ErrorClass.PERMANENT
    return ErrorClass.TRANSIENT


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _http_errors(exc: BaseException):
    """HTTP errors anywhere in the chain yt-dlp builds (DownloadError.exc_info, ExtractorError.cause, __cause__)."""
    from yt_dlp.networking.exceptions import HTTPError

    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, HTTPError):
            yield current
        exc_info = getattr(current, "exc_info", None)
        if isinstance(exc_info, tuple) and len(exc_info) > 1:
            stack.append(exc_info[1])
        stack.extend([getattr(current, "cause", None), current.__cause__, current.__context__])


def classify_exception(exc: BaseException) -> Classified:
    """Classify an exception raised by yt-dlp, reading status, Retry-After and body of any HTTP error in it."""
    message = clean_message(str(exc)) or type(exc).__name__
    retry_after, body = None, ""
    for http_error in _http_errors(exc):
        response = http_error.response
        retry_after = retry_after or parse_retry_after(response.get_header("Retry-After"))
        try:
            body += response.read(MAX_BODY_BYTES).decode("utf-8", "replace")
        except Exception:
            pass
    return Classified(classify_message(message, body), message, retry_after)
