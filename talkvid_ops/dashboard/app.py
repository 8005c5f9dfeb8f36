"""The dashboard's web app: the page at `/`, its JSON at `/api/status`, a release's files under `/releases/`, and
503 with the reason (page or JSON) when the catalog cannot be read. Links are relative, so it works under any
mount point."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from talkvid_ops.catalog.db import CatalogUnavailable
from talkvid_ops.dashboard.page import render_dashboard, render_unavailable
from talkvid_ops.dashboard.report import NotInRelease, catalog_report, release_file


def create_app(authenticate: Callable[..., Any] | None = None) -> FastAPI:
    """The dashboard app; `authenticate` is a FastAPI dependency that every request must pass (the host's login)."""
    app = FastAPI(
        title="talkvid catalog",
        dependencies=[Depends(authenticate)] if authenticate else [],
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

    # plain `def` endpoints: FastAPI runs them in its threadpool, off the server's event loop
    @app.get("/", response_class=HTMLResponse)
    def dashboard() -> str:
        return render_dashboard(catalog_report())

    @app.get("/api/status")
    def status() -> dict[str, Any]:
        return catalog_report()

    @app.get("/releases/{release_id}/files/{path:path}")
    def release_files(release_id: str, path: str) -> FileResponse:
        try:
            return FileResponse(release_file(release_id, path))
        except NotInRelease as exc:
            raise HTTPException(404, str(exc)) from None

    return app
