"""Who may do what on the catalog page: three capabilities, each checked by an authorizer the host injects, and a
cross-site request forgery check on every state-changing request.

The page app knows no users or roles. The host (the Airflow plugin) hands `create_app` one authorizer per capability:
an async function of the request that returns when the caller may, and raises HTTPException (401: not signed in,
403: not allowed) otherwise. A capability without an authorizer is refused; with no authorizers at all (the library
used on its own, as the tests do) everything is open.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

Authorizer = Callable[[Request], Awaitable[None]]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Capability(StrEnum):
    READ = "read"  # the page, its JSON, the validation pages and their statistics
    ANNOTATE = "annotate"  # record a label on a validation page (its POST)
    OPERATE = "operate"  # download release files (and trigger runs)


def read_or_annotate(request: Request) -> Capability:
    """On the validation pages the request's method says what is asked: reading, or recording a label."""
    return Capability.READ if request.method in SAFE_METHODS else Capability.ANNOTATE


def guard(authorizers: Mapping[Capability, Authorizer] | None, needed: Capability | Callable[[Request], Capability]):
    """A FastAPI dependency: the request must pass the authorizer of the `needed` capability (or of the one
    `needed(request)` names)."""

    async def authorize(request: Request) -> None:
        if authorizers is None:
            return
        capability = needed if isinstance(needed, Capability) else needed(request)
        authorizer = authorizers.get(capability)
        if authorizer is None:
            raise HTTPException(403, f"nobody may {capability} here")
        await authorizer(request)

    return authorize


def same_origin(request: Request) -> None:
    """Refuse a state-changing request that does not come from a page of this host (cross-site request forgery).

    Browsers send `Origin` with every form POST (`Referer` where an old one does not); its host must be the host the
    request was sent to. Requests without either are refused too. Together with the SameSite=Lax session cookie of
    Airflow's UI, a page of another site can neither send the cookie nor pass this check."""
    if request.method in SAFE_METHODS:
        return
    source = request.headers.get("origin") or request.headers.get("referer") or ""
    host = request.headers.get("host", "")
    if source in ("", "null") or urlsplit(source).netloc.lower() != host.lower():
        raise HTTPException(403, "cross-site request refused: the Origin (or Referer) header must name this host")
