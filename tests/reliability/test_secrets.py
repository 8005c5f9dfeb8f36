"""No secret in any output, log, catalog row or release file: the catalog URL's password, cookie contents and
connection secrets are hidden by the one redaction of `talkvid_ops.redact`, also when a command fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from loopback import LoopbackServer, prepare_web_media
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from talkvid_ops.catalog import db
from talkvid_ops.catalog.models import Base
from talkvid_ops.demo import demo_videos

TALKVID = shutil.which("talkvid", path=str(Path(sys.executable).parent)) or "talkvid"
CANARY = "canary-Zq7x-41"


def talkvid(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("TALKVID_")}
    return subprocess.run([TALKVID, *args], capture_output=True, text=True, env={**environ, **env}, timeout=120)


def test_a_malformed_catalog_url_is_one_line_with_the_password_hidden(tmp_path):
    url = f"postgresql+psycopg2://alice:p@ss:{CANARY}@127.0.0.1:1/db"
    done = talkvid("status", env={"TALKVID_DATABASE_URL": url, "TALKVID_DATA_DIR": str(tmp_path)})
    assert done.returncode == 1
    assert CANARY not in done.stdout + done.stderr and "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: ") and "TALKVID_DATABASE_URL" in line

    debug = talkvid("status", env={"TALKVID_DATABASE_URL": url, "TALKVID_DATA_DIR": str(tmp_path), "TALKVID_DEBUG": "1"})
    assert debug.returncode == 1 and CANARY not in debug.stdout + debug.stderr


def test_an_unexpected_error_is_one_line_and_a_traceback_only_when_debugging(tmp_path):
    """A data dir that is a symlink loop makes path resolution fail where no command expects it."""
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    env = {"TALKVID_DATABASE_URL": f"postgresql+psycopg2://alice:{CANARY}@127.0.0.1:1/db", "TALKVID_DATA_DIR": str(loop / "data")}
    done = talkvid("status", env=env)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: ") and "loop" in line
    debug = talkvid("status", env={**env, "TALKVID_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert CANARY not in done.stderr + debug.stderr


def _canary_catalog(pg_server) -> str:
    """A PostgreSQL catalog owned by a role whose password is a canary; the URL holds it (quoted as a URL must)."""
    admin_url = pg_server.create_database()
    database = make_url(admin_url).database
    engine = create_engine(admin_url)
    with engine.begin() as connection:
        connection.execute(text(f"CREATE ROLE canary_owner LOGIN PASSWORD '{CANARY}-db'"))
        connection.execute(text(f'ALTER DATABASE "{database}" OWNER TO canary_owner'))
        connection.execute(text("ALTER SCHEMA public OWNER TO canary_owner"))
    engine.dispose()
    return make_url(admin_url).set(username="canary_owner", password=f"{CANARY}-db").render_as_string(hide_password=False)


def _catalog_dump(url: str) -> str:
    engine = create_engine(url)
    with engine.connect() as connection:
        rows = {table.name: [dict(row._mapping) for row in connection.execute(select(table))] for table in Base.metadata.sorted_tables}
    engine.dispose()
    assert rows["video"] and rows["clip"] and rows["release"]  # the run made something to look at
    return json.dumps(rows, default=str)


def test_no_canary_in_any_output_log_catalog_row_or_release_file(pg_server, pyfeat_media, cache_dir, tmp_path):
    """A run with a catalog password, cookies (a file and an Airflow connection) and a connection secret set to canary
    strings: crawl from the loopback server with the cookies, segment, score, export (after decide, labels, speakers,
    bench), then failing commands; the CLI's output (its log is stderr, at DEBUG), every file of the data dir and the
    release, and every catalog row are grepped."""
    catalog = _canary_catalog(pg_server)
    data_dir, release_dir = tmp_path / "data", tmp_path / "release"
    jar = tmp_path / "cookies.txt"
    jar.write_text(f"# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tSID\t{CANARY}-file-cookie\n")
    connection = {"conn_type": "generic", "password": f"{CANARY}-conn-password",
                  "extra": {"cookies": f"# Netscape HTTP Cookie File\n127.0.0.1\tFALSE\t/\tFALSE\t0\tSID\t{CANARY}-conn-cookie\n"}}  # fmt: skip
    config = tmp_path / "talkvid.yaml"
    config.write_text(yaml.safe_dump({"crawl": {"min_request_interval_s": 0, "retries": 1, "retry_backoff_base_s": 0.01}}))
    env = {"TALKVID_DATABASE_URL": catalog, "TALKVID_DATA_DIR": str(data_dir), "TALKVID_CONFIG": str(config),
           "TALKVID_LOG_LEVEL": "DEBUG", "AIRFLOW_CONN_WEB_COOKIES": json.dumps(connection)}  # fmt: skip
    outputs = []

    def run(*args: str, ok: bool = True, **overrides: str) -> subprocess.CompletedProcess:
        done = talkvid(*args, env={**env, **overrides})
        outputs.append(f"$ talkvid {' '.join(args)}\n{done.stdout}\n{done.stderr}")
        assert (done.returncode == 0) == ok, outputs[-1][-3000:]
        return done

    media = prepare_web_media(pyfeat_media, tmp_path / "web")
    vlog = demo_videos(cache_dir, cache_dir / "demo-videos")[1]  # a face that speaks: it makes clips
    shutil.copyfile(vlog, media / "vlog.mp4")
    with LoopbackServer(media) as server:
        page = server.playlist_page("talks.html", ["/media/vlog.mp4"], title="Talks")
        urls = tmp_path / "urls.txt"
        urls.write_text(server.url("/media/talk.mp4") + "\n")
        run("init")
        run("source", "add", page, "--min-height", "0", "--cookies", str(jar))
        run("source", "add", str(urls), "--min-height", "0", "--cookies-connection", "web_cookies")
        crawled = json.loads(run("crawl").stdout)
        media_hits = [h for h in server.hits if h.path.startswith("/media/")]
    assert crawled["download"]["probed"] == 2
    sent = " ".join(h.headers.get("Cookie", "") for h in media_hits)
    assert f"{CANARY}-file-cookie" in sent and f"{CANARY}-conn-cookie" in sent  # the cookies were used
    run("segment")
    run("score", "--limit", "3")
    run("export", "--profile", "talkvid-code", "--out", str(release_dir), "--format", "talkvid-json", "--format", "clips")
    assert "canary_owner:***@" in run("status").stdout
    # failing commands: an unreachable catalog, a URL that does not parse
    unreachable = make_url(catalog).set(port=1).render_as_string(hide_password=False)
    assert "cannot reach the catalog" in run("status", ok=False, TALKVID_DATABASE_URL=unreachable).stderr
    assert "cannot reach the catalog" in run("crawl", ok=False, TALKVID_DATABASE_URL=unreachable).stderr
    malformed = f"postgresql+psycopg2://canary_owner:p@ss:{CANARY}-bad@127.0.0.1:1/db"
    assert "is not a database URL" in run("export", "--out", str(tmp_path / "x"), ok=False, TALKVID_DATABASE_URL=malformed).stderr

    release_files = [p for p in release_dir.resolve().rglob("*") if p.is_file()]  # resolve: the release may be a link
    files = [*[p for p in data_dir.rglob("*") if p.is_file()], *release_files]
    assert any(p.suffix == ".mp4" for p in release_files) and (release_dir / "talkvid.json").is_file()
    leaks = [str(p) for p in files if CANARY.encode() in p.read_bytes()]
    assert leaks == []
    assert [o for o in outputs if CANARY in o] == []
    assert CANARY not in _catalog_dump(catalog)
    db.get_engine(catalog).dispose()


def test_the_docker_runners_catalog_connection_password_is_registered(airflow_env):
    from airflow.models import Connection

    from talkvid_ops.redact import redact
    from talkvid_ops.runners.docker_runner import catalog_url_from_connection

    conn = Connection(conn_id="talkvid_catalog", conn_type="postgres", login="talkvid", password=f"{CANARY}-runner", host="db", port=5432, schema="talkvid")
    url = catalog_url_from_connection(conn)
    assert f"{CANARY}-runner" in url  # the container needs it
    assert CANARY not in redact(f"container said: connecting with {CANARY}-runner failed")
