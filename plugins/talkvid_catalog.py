"""The catalog dashboard in the Airflow UI: Airflow's API server mounts the app of `talkvid_ops.dashboard` at
`/talkvid/` (the page, and its JSON at `/talkvid/api/status`), and a nav entry (Browse -> Catalog) shows it in an
iframe.

Airflow does not guard plugin apps with its login, so the mounted app asks Airflow's auth manager for the caller:
the UI's session cookie (sent by the iframe) or a bearer token, as the REST API accepts them. Every Airflow
component imports the plugins folder; the dashboard reads talkvid's settings and catalog only when asked.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from fastapi import Request

from talkvid_ops.dashboard.app import create_app

URL_PREFIX = "/talkvid"


async def airflow_login(request: Request) -> None:
    """Who is calling, as Airflow's API decides it (bearer token, else the UI's session cookie); 401/403 otherwise."""
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    await get_user(request, None, await bearer_scheme(request))


async def airflow_user(request: Request) -> str:
    """The signed-in Airflow user's name: who an annotation on the validation pages is recorded for."""
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    return (await get_user(request, None, await bearer_scheme(request))).get_name()


class TalkvidCatalogPlugin(AirflowPlugin):
    name = "talkvid_catalog"
    fastapi_apps = [
        {"app": create_app(authenticate=airflow_login, annotator=airflow_user), "url_prefix": URL_PREFIX, "name": "talkvid catalog"},
    ]
    # href and url_route are relative to the UI's base URL (no leading slash), so a [api] base_url path still works
    external_views = [
        {
            "name": "Catalog",
            "href": URL_PREFIX.lstrip("/") + "/",
            "url_route": "talkvid-catalog",
            "destination": "nav",
            "category": "browse",
        }
    ]
