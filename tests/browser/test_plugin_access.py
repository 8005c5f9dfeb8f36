"""The catalog page in Airflow: one role map, checked by Airflow's auth manager (here the simple one, with its
viewer/user/op/admin roles), and no cross-site form post. Run as the API server runs it: a fresh interpreter that
loads the plugins folder and serves `create_app("core")`."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from tests.browser.test_plugin_dashboard import PLUGINS, sqlite_catalog

ACCESS_CHECK = r"""
import json
from fastapi.testclient import TestClient
from airflow.api_fastapi.app import create_app, get_auth_manager
from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

client = TestClient(create_app("core"))
def token(role):
    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=f"u-{role}", role=role))

ORIGIN = {"Origin": "http://testserver"}  # the host TestClient sends requests to
out = {}
for role in (None, "viewer", "user", "op", "admin"):
    bearer = {"Authorization": f"Bearer {token(role)}"}
    post = lambda headers: client.post("/talkvid/validation/set/no-such-set/annotate", data={"item": "x", "verdict": "accept"},
                                       headers=headers, follow_redirects=False)
    out[str(role)] = {
        "status": client.get("/talkvid/api/status", headers=bearer).status_code,
        "page": client.get("/talkvid/", cookies={"_token": token(role)}).status_code,
        "validation": client.get("/talkvid/validation/", headers=bearer).status_code,
        "download": client.get(f"/talkvid/releases/{RELEASE}/files/report.html", headers=bearer).status_code,
        "annotate": [post({**bearer, **ORIGIN}).status_code, post({**bearer, **ORIGIN}).json()["detail"]],
        "trigger": client.post("/talkvid/whatif", data={"profile": "no-such@0", "criterion": "quality", "min": "1"}, headers={**bearer, **ORIGIN}),
    }
    trigger = out[str(role)]["trigger"]
    out[str(role)]["trigger"] = [trigger.status_code, trigger.json()["detail"] if trigger.status_code == 403 else trigger.text]
cookie = {"_token": token("admin")}
forged = {  # what a page of another site can make a signed-in admin's browser send
    "other_origin": client.post("/talkvid/validation/set/s/annotate", data={"item": "x", "verdict": "accept"}, cookies=cookie,
                                headers={"Origin": "https://evil.example"}),
    "other_referer": client.post("/talkvid/validation/set/s/annotate", data={"item": "x", "verdict": "accept"}, cookies=cookie,
                                 headers={"Referer": "https://evil.example/form.html"}),
    "no_origin": client.post("/talkvid/validation/set/s/annotate", data={"item": "x", "verdict": "accept"}, cookies=cookie),
    "null_origin": client.post("/talkvid/validation/set/s/annotate", data={"item": "x", "verdict": "accept"}, cookies=cookie,
                               headers={"Origin": "null"}),
}
out["forged"] = {k: [r.status_code, r.json()["detail"]] for k, r in forged.items()}
same_site = client.post("/talkvid/validation/set/s/annotate", data={"item": "x", "verdict": "accept"}, cookies=cookie,
                        headers={"Referer": "http://testserver/talkvid/validation/set/s/annotate"})
out["same_site_referer"] = [same_site.status_code, same_site.json()["detail"]]
print("RESULT " + json.dumps(out))
"""


def test_the_role_map_and_the_forgery_check_guard_the_page(airflow_db, tmp_path):
    catalog = sqlite_catalog(tmp_path)
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS), "TALKVID_DATABASE_URL": catalog["url"],
           "TALKVID_DATA_DIR": str(catalog["data_dir"])}  # fmt: skip
    env.pop("TALKVID_CONFIG", None)
    script = f"RELEASE = {catalog['release_id']!r}\n" + ACCESS_CHECK
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    out = json.loads(line[len("RESULT ") :])

    no_role = out["None"]
    assert [no_role[k] for k in ("status", "page", "validation", "download")] == [403, 403, 403, 403]
    assert no_role["annotate"] == [403, "u-None may not annotate on the talkvid catalog page: ask for a role that may"]
    viewer = out["viewer"]
    assert [viewer[k] for k in ("status", "page", "validation")] == [200, 200, 200]  # a viewer reads
    assert viewer["download"] == 403 and viewer["annotate"][0] == 403 and "may not annotate" in viewer["annotate"][1]
    assert viewer["trigger"] == [403, "u-viewer may not operate on the talkvid catalog page: ask for a role that may"]
    for role in ("user", "op", "admin"):  # past the role and forgery checks: the set does not exist
        assert [out[role][k] for k in ("status", "page", "validation", "download")] == [200, 200, 200, 200], role
        assert out[role]["annotate"] == [404, "no validation set no-such-set"], role
        # past the operate and forgery checks, the what-if trigger finds no such stored profile: nothing is triggered
        assert out[role]["trigger"][0] == 400 and "not triggered: no stored profile no-such@0" in out[role]["trigger"][1], role

    refused = "cross-site request refused: the Origin (or Referer) header must name this host"
    assert out["forged"] == {k: [403, refused] for k in ("other_origin", "other_referer", "no_origin", "null_origin")}
    assert out["same_site_referer"] == [404, "no validation set s"]


def test_the_compose_stack_uses_an_auth_manager_with_roles():
    import tomllib
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    common = yaml.safe_load((root / "docker-compose.yml").read_text())["x-airflow-common"]["environment"]
    assert common["AIRFLOW__CORE__AUTH_MANAGER"] == "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
    assert "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS" not in common
    extra = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]["fab"]
    pins = dict(line.split("==", 1) for line in (root / "constraints.txt").read_text().splitlines() if "==" in line)
    assert "apache-airflow-providers-fab" in extra and "apache-airflow-providers-fab" in pins
    assert "[airflow,cpu,fab]" in (root / "Dockerfile").read_text()  # the Airflow images carry it
