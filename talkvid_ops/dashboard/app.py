"""The dashboard's web app: the page at `/`, its JSON at `/api/status`, clip thumbnails under `/thumbnails/`, a
release's files under `/releases/`, and 503 with the reason (page or JSON) when the catalog cannot be read. Links are relative, so it works under any
mount point. Every route needs a capability (`access`): reading, annotating, or operating (release files)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from talkvid_ops.catalog.db import CatalogUnavailable
from talkvid_ops.dashboard.access import Authorizer, Capability, guard, read_or_annotate, same_origin
from talkvid_ops.dashboard.clips import clip_router
from talkvid_ops.dashboard.page import render_dashboard, render_unavailable
from talkvid_ops.dashboard.report import NoThumbnail, NotInRelease, catalog_report, open_catalog, release_file, thumbnail_file
from talkvid_ops.dashboard.whatif import Trigger, what_if_router


class _BuiltOnFirstRequest:
    """An ASGI app made on its first request: loading the page app (every Airflow component imports the plugins)
    imports nothing of what the sub-app serves."""

    def __init__(self, build: Callable[[], Any]):
        self._build, self._app = build, None

    async def __call__(self, scope, receive, send) -> None:
        if self._app is None:
            self._app = self._build()
        await self._app(scope, receive, send)


def _page_app(authorizers: Mapping[Capability, Authorizer] | None, needed: Capability | Callable[[Request], Capability]) -> FastAPI:
    """A FastAPI app whose every request must pass the authorizer of the `needed` capability and, when it changes
    state, the same-origin check; it answers 503 with the reason when the catalog cannot be read."""
    app = FastAPI(
        title="talkvid catalog",
        dependencies=[Depends(guard(authorizers, needed)), Depends(same_origin)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    @app.exception_handler(CatalogUnavailable)
    def unavailable(request: Request, problem: CatalogUnavailable):
        if request.url.path.rstrip("/").endswith("/api/status"):
            body = {"error": "catalog unavailable", "reason": problem.reason, "catalog": problem.catalog}
            return JSONResponse(body, 503)
        return HTMLResponse(render_unavailable(problem.reason, problem.catalog), 503)

    return app


def create_app(
    authorizers: Mapping[Capability, Authorizer] | None = None,
    annotator: Callable[..., str] | None = None,
    trigger: Callable[..., Trigger] | None = None,
) -> FastAPI:
    """The dashboard app; `authorizers` hold the host's check per capability (see `access`; None: open to all);
    `annotator` is a FastAPI dependency naming the signed-in user, and with it the human-validation pages are served
    under `validation/`; `trigger` is a FastAPI dependency returning the host's way to start a talkvid_curate run
    (see `whatif`), and with it the what-if page has its trigger button."""
    app = _page_app(authorizers, Capability.READ)

    # plain `def` endpoints: FastAPI runs them in its threadpool, off the server's event loop
    @app.get("/", response_class=HTMLResponse)
    def dashboard() -> str:
        return render_dashboard(catalog_report())

    @app.get("/api/status")
    def status() -> dict[str, Any]:
        return catalog_report()

    @app.get("/thumbnails/{clip_id}.jpg")
    def thumbnail(clip_id: str) -> FileResponse:
        try:
            return FileResponse(thumbnail_file(clip_id), media_type="image/jpeg")
        except NoThumbnail as exc:
            raise HTTPException(404, str(exc)) from None

    @app.get("/releases/{release_id}/files/{path:path}", dependencies=[Depends(guard(authorizers, Capability.OPERATE))])
    def release_files(release_id: str, path: str) -> FileResponse:
        try:
            return FileResponse(release_file(release_id, path))
        except NotInRelease as exc:
            raise HTTPException(404, str(exc)) from None

    app.include_router(what_if_router(catalog=open_catalog, operate=guard(authorizers, Capability.OPERATE), trigger=trigger))
    app.include_router(clip_router(catalog=open_catalog))

    if annotator is not None:

        def validation_app() -> FastAPI:
            from talkvid_ops.curate.validation.views import validation_router

            pages = _page_app(authorizers, read_or_annotate)
            pages.include_router(validation_router(catalog=open_catalog, annotator=annotator, prefix=""))
            return pages

        app.mount("/validation", _BuiltOnFirstRequest(validation_app))
    return app
