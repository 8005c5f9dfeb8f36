"""Cookies for yt-dlp: a source holds only a reference (a cookies file's path, or an Airflow connection id), resolved
while a crawl run needs it.

Contents from a connection are written into the run's private folder (`<data dir>/state/cookies/<host>/<run>_...`,
mode 0700, files 0600), removed when the run ends. A run killed with SIGKILL cannot remove its folder, so every crawl
run first sweeps the folders of this host's processes that are gone. Cookie contents are checked to be a Netscape
cookies file (a line that is not one would be echoed by yt-dlp's warning), their values registered with
`talkvid_ops.redact` so that no log line or error shows them, and never stored in the catalog.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from talkvid_ops.catalog.runs import process_alive, this_process
from talkvid_ops.crawl.sources import SourceSettings
from talkvid_ops.errors import TalkvidError
from talkvid_ops.redact import register_secrets_of

log = logging.getLogger("talkvid.crawl")
HTTP_ONLY_PREFIX = "#HttpOnly_"  # curl's and browsers' marker of an HttpOnly cookie: an entry, not a comment
NETSCAPE_FIELDS = 7  # domain, subdomains, path, secure, expiry, name, value


def _connection_extra(conn_id: str, environ: dict[str, str]) -> dict[str, Any]:
    """The `extra` of an Airflow connection defined in the environment (AIRFLOW_CONN_<ID>, JSON or URI form).
    Whatever is wrong with it is a TalkvidError naming the connection, never showing its contents."""
    variable = f"AIRFLOW_CONN_{conn_id.upper()}"
    where = f"cookies connection {conn_id!r}"
    raw = environ.get(variable)
    if not raw:
        raise TalkvidError(f"{where}: {variable} is not set in this task's environment")
    try:
        if raw.lstrip().startswith("{"):
            extra = json.loads(raw).get("extra") or {}
            if isinstance(extra, str):
                extra = json.loads(extra)
        else:
            extra = {k: v[0] for k, v in parse_qs(urlparse(raw).query).items()}
    except ValueError:  # JSON that does not parse, a URI urlparse refuses
        raise TalkvidError(f"{where}: {variable} is neither a JSON connection nor a connection URI with a readable extra") from None
    if not isinstance(extra, dict):
        raise TalkvidError(f"{where}: its extra is not a JSON object")
    for key in ("cookies", "cookies_file"):
        if key in extra and not isinstance(extra[key], str):
            raise TalkvidError(f"{where}: its extra's {key} is not text")
    return extra


def check_cookies(lines: Iterable[str], where: str) -> None:
    """Raise TalkvidError unless `lines` are a Netscape cookies file with at least one cookie (the line number is
    named, its content never: it may hold a secret); register the cookie values for redaction."""
    lines = list(lines)
    register_secrets_of(lines)
    cookies = 0
    for number, line in enumerate(lines, 1):
        text = line.rstrip("\r\n")
        if text.startswith(HTTP_ONLY_PREFIX):
            text = text[len(HTTP_ONLY_PREFIX) :]
        elif not text.strip() or text.lstrip().startswith("#"):
            continue
        if len(text.split("\t")) != NETSCAPE_FIELDS:
            raise TalkvidError(f"{where}: line {number} is not a cookie of a Netscape cookies file ({NETSCAPE_FIELDS} tab-separated fields)")
        cookies += 1
    if not cookies:
        raise TalkvidError(f"{where}: holds no cookie (a Netscape cookies file has one per line)")


def _checked_file(path: Path, via: str = "") -> str:
    """A cookies file's path, once its content is checked; `via` names the connection that pointed to it."""
    where = f"{via}: cookies file {path}" if via else f"cookies file {path}"
    if not path.is_file():
        raise TalkvidError(f"{where} does not exist on this machine")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TalkvidError(f"{where}: cannot read it: {exc.strerror if isinstance(exc, OSError) else 'not UTF-8 text'}") from None
    check_cookies(text.splitlines(keepends=True), where)
    return str(path)


@contextmanager
def cookies_path(settings: SourceSettings, folder: RunCookieFolder, environ: dict[str, str] | None = None) -> Iterator[str | None]:
    """The cookies file for yt-dlp while the block runs, checked. Contents from a connection go to a file in the
    run's private folder, removed afterwards."""
    env = os.environ if environ is None else environ
    if settings.cookies_file:
        yield _checked_file(Path(settings.cookies_file).expanduser())
        return
    if not settings.cookies_connection:
        yield None
        return
    where = f"cookies connection {settings.cookies_connection!r}"
    extra = _connection_extra(settings.cookies_connection, env)
    if extra.get("cookies_file"):
        yield _checked_file(Path(extra["cookies_file"]).expanduser(), where)
        return
    if not extra.get("cookies"):
        raise TalkvidError(f"{where}: its extra has neither cookies_file nor cookies")
    check_cookies(extra["cookies"].splitlines(keepends=True), where)
    try:
        path = folder.path / f"{uuid.uuid4().hex}.txt"
    except OSError as exc:
        raise TalkvidError(f"{where}: cannot make the run's cookie folder in {folder.host_dir}: {exc.strerror or exc}") from None
    try:
        try:
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as fh:
                fh.write(extra["cookies"])
        except OSError as exc:
            raise TalkvidError(f"{where}: cannot write its cookies file {path}: {exc.strerror or exc}") from None
        yield str(path)
    finally:
        path.unlink(missing_ok=True)


class RunCookieFolder:
    """The private folder of one crawl run's cookie files: `<root>/<host>/<run id>_<pid>_<process start>`, made on
    first use (0700), removed when the run ends. Entering it sweeps the folders of this host's dead processes."""

    def __init__(self, root: Path, run_id: str) -> None:
        me = this_process()
        self.host_dir = root / me.host
        self.name = f"{run_id}_{me.pid}_{me.started or ''}"
        self._made = False

    @property
    def path(self) -> Path:
        """The folder, made now if it is not there yet."""
        folder = self.host_dir / self.name
        if not self._made:
            self.host_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            folder.mkdir(mode=0o700)
            folder.chmod(0o700)  # whatever the umask
            self._made = True
        return folder

    def sweep(self) -> int:
        """Remove the folders that processes of this host left when they died; returns how many."""
        swept = 0
        if not self.host_dir.is_dir():
            return swept
        for folder in self.host_dir.iterdir():
            _run_id, _, rest = folder.name.partition("_")
            pid, _, started = rest.partition("_")
            if not pid.isdigit() or process_alive(int(pid), started or None):
                continue
            shutil.rmtree(folder, ignore_errors=True)
            log.info("removed the cookie folder %s of process %s, which is gone", folder, pid)
            swept += 1
        return swept

    def __enter__(self) -> RunCookieFolder:
        self.sweep()
        return self

    def __exit__(self, *exc) -> None:
        if self._made:
            shutil.rmtree(self.host_dir / self.name, ignore_errors=True)
