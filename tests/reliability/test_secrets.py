"""No secret in any output, log, catalog row or release file: the catalog URL's password, cookie contents and
connection secrets are hidden by the one redaction of `talkvid_ops.redact`, also when a command fails."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

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
