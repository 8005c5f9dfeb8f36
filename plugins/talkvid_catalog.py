"""The catalog dashboard in the Airflow UI: Airflow's API server mounts the app of `talkvid_ops.dashboard` at
`/talkvid/` (the page, and its JSON at `/talkvid/api/status`), and a nav entry (Browse -> Catalog) shows it in an
iframe.

Airflow does not guard plugin apps with its login, so the mounted app asks Airflow for the caller (the UI's session
cookie, sent by the iframe, or a bearer token, as the REST API accepts them) and asks Airflow's auth manager whether
the caller's roles allow what the request needs. The role map (`ROLE_MAP`) puts each capability of the page on the
talkvid_curate DAG, which every auth manager understands:

| capability | request | auth manager check | simple auth manager | FAB auth manager |
| --- | --- | --- | --- | --- |
| read | GET of the page, its JSON, the validation pages | `is_authorized_dag(GET, RUN)` | viewer and up | Viewer and up |
| annotate | POST of a validation page | `is_authorized_dag(PUT, HITL_DETAIL)` | user and up | User and up |
| operate | release files (download), runs (trigger) | `is_authorized_dag(POST, RUN)` | user and up | User and up |

The what-if page's button starts a talkvid_curate run with Airflow's own trigger code (`trigger_dag`, as the REST
API's trigger does: the DAG's params validate the conf), recorded as triggered from the UI by the signed-in user.

A signed-in user without a role gets 403 everywhere. Every Airflow component imports the plugins folder; the
dashboard reads talkvid's settings and catalog only when asked.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin
from fastapi import HTTPException, Request

from talkvid_ops.dashboard.access import Capability
from talkvid_ops.dashboard.app import create_app
from talkvid_ops.dashboard.whatif import TriggeredRun, TriggerRefused

URL_PREFIX = "/talkvid"
CURATE_DAG = "talkvid_curate"  # the DAG whose runs make the releases the page serves
# capability -> (method, DAG access entity) of the auth manager's check on CURATE_DAG
ROLE_MAP = {
    Capability.READ: ("GET", "RUN"),
    Capability.ANNOTATE: ("PUT", "HITL_DETAIL"),  # a human's input on the pipeline, as Airflow's human-in-the-loop tasks
    Capability.OPERATE: ("POST", "RUN"),
}


async def signed_in_user(request: Request):
    """Who is calling, as Airflow's API decides it (bearer token, else the UI's session cookie); 401/403 otherwise."""
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    return await get_user(request, None, await bearer_scheme(request))


def airflow_authorizer(capability: Capability):
    """The check of `capability` by Airflow's auth manager, for the signed-in user (see ROLE_MAP)."""
    method, entity = ROLE_MAP[capability]

    async def authorize(request: Request) -> None:
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails

        user = await signed_in_user(request)
        allowed = get_auth_manager().is_authorized_dag(method=method, access_entity=DagAccessEntity[entity], details=DagDetails(id=CURATE_DAG), user=user)
        if not allowed:
            raise HTTPException(403, f"{user.get_name()} may not {capability} on the talkvid catalog page: ask for a role that may")

    return authorize


async def airflow_user(request: Request) -> str:
    """The signed-in Airflow user's name: who an annotation on the validation pages is recorded for."""
    return (await signed_in_user(request)).get_name()


async def airflow_trigger(request: Request):
    """A function of a conf that starts a talkvid_curate run for the signed-in user: the what-if page's trigger."""
    user = (await signed_in_user(request)).get_name()

    def trigger(conf: dict) -> TriggeredRun:
        from urllib.parse import quote

        from airflow.api.common.trigger_dag import trigger_dag
        from airflow.exceptions import AirflowException
        from airflow.utils.types import DagRunTriggeredByType

        try:
            dag_run = trigger_dag(CURATE_DAG, triggered_by=DagRunTriggeredByType.UI, triggering_user_name=user, conf=conf)
        except (AirflowException, ValueError) as exc:  # the params' validation, a missing or import-broken DAG
            raise TriggerRefused(str(exc)) from None
        # the page is at <base>/talkvid/whatif: the UI's run page is <base>/dags/<dag>/runs/<run>
        return TriggeredRun(dag_run.run_id, f"../dags/{CURATE_DAG}/runs/{quote(dag_run.run_id, safe='')}")

    return trigger


class TalkvidCatalogPlugin(AirflowPlugin):
    name = "talkvid_catalog"
    fastapi_apps = [
        {
            "app": create_app(authorizers={c: airflow_authorizer(c) for c in Capability}, annotator=airflow_user, trigger=airflow_trigger),
            "url_prefix": URL_PREFIX,
            "name": "talkvid catalog",
        },
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
