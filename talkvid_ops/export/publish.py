"""Publishing a release atomically: built whole in a staging folder, switched in with one rename.

The folder a user names (`--out release`) is a symbolic link to a hidden sibling `.release.<release id>.<token>`
that holds one complete release. An export

- takes an exclusive lock on `.release.lock` beside it (a second export into the same folder waits for the first),
- refuses a target that is neither absent, an empty folder, nor a talkvid release (nothing is touched),
- builds the new release in a fresh `.release.<release id>.<token>` folder (clip files the previous release holds
  with the same cut parameters, size and sha256 are hard-linked from it, not cut again),
- switches the link to it in one `os.replace`, then removes every other `.release.*` folder: older releases and
  the staging folders of exports that were killed.

So a reader of `release/talkvid.json` sees the old release or the new one, whole, never a mix; a killed export
leaves the old release in place and the next export sweeps its staging folder. A release written before releases
were links (a real folder holding manifest.json) is moved aside as the previous release on the first switch.

Test hook: `TALKVID_EXPORT_KILL_AT=N` makes the exporting process SIGKILL itself at its Nth `checkpoint` (the
reliability tests use it to kill an export at chosen points; unset, a checkpoint does nothing).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import secrets
import shutil
import signal
from pathlib import Path
from typing import Any

from talkvid_ops.errors import TalkvidError
from talkvid_ops.media.hashing import sha256_file

MANIFEST = "manifest.json"
KILL_AT_ENV = "TALKVID_EXPORT_KILL_AT"
_checkpoints = 0


def checkpoint() -> None:
    """A point where the reliability tests may kill the export (see the module docstring)."""
    global _checkpoints
    kill_at = os.environ.get(KILL_AT_ENV)
    if kill_at:
        _checkpoints += 1
        if _checkpoints == int(kill_at):
            os.kill(os.getpid(), signal.SIGKILL)


def out_of_space(exc: BaseException) -> bool:
    """Whether a failure was the disk filling up (an OSError, or ffmpeg's complaint about it)."""
    return (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) or "No space left on device" in str(exc)


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The manifest of a talkvid release folder; None when the folder holds none."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and "release_id" in manifest and isinstance(manifest.get("files"), dict) else None


def write_json(payload: Any, path: Path, sort_keys: bool = True) -> Path:
    """JSON written to a temporary file beside `path`, then renamed over it."""
    write_text(json.dumps(payload, indent=1, sort_keys=sort_keys, ensure_ascii=False) + "\n", path)
    return path


def write_text(text: str, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
    return path


MAY_BE_EMPTY = (".jsonl",)  # a table of no rows (a release of no candidates); every other file has content


class ReleaseFolder:
    """The lock, the previous release and the staging folder of one export into `target` (a context manager)."""

    def __init__(self, target: Path, release_id: str):
        self.target = target
        self.parent, self.name = target.parent, target.name
        self.release_id = release_id
        self.previous: Path | None = None  # the folder of the release the target holds now
        self.previous_manifest: dict[str, Any] = {}
        self.staging = self.parent / f".{self.name}.{release_id}.{secrets.token_hex(6)}"
        self._lock: int | None = None

    def _ours(self, path: Path) -> bool:
        """A release folder of this target (published, superseded or a killed export's staging)."""
        return re.fullmatch(rf"\.{re.escape(self.name)}\.(?:[0-9a-f]+\.[0-9a-f]{{12}}|legacy-[0-9a-f]{{12}})", path.name) is not None

    def __enter__(self) -> ReleaseFolder:
        self.parent.mkdir(parents=True, exist_ok=True)
        self._lock = os.open(self.parent / f".{self.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._lock, fcntl.LOCK_EX)  # a second export into this folder waits here
        try:
            self._check_target()
            self.staging.mkdir()
        except BaseException:
            self._unlock()
            raise
        return self

    def _check_target(self) -> None:
        target = self.target
        if target.is_symlink() or target.is_dir():
            folder = target.resolve()
            manifest = read_manifest(folder) if folder.is_dir() else None
            if manifest is not None:
                self.previous, self.previous_manifest = folder, manifest
                return
            if not target.is_symlink() and not any(target.iterdir()):
                return  # an empty folder: the link replaces it
        elif not target.exists():
            return
        raise TalkvidError(
            f"{target} is neither empty nor a talkvid release (no {MANIFEST} of a release in it): refusing to export into it; name a new or empty folder"
        )

    def reusable(self, rel: str, key: str) -> Path | None:
        """The previous release's file written with the same parameters `key`, if it is still whole (size and sha256
        as its manifest recorded): a truncated or foreign file of the right name is not reused."""
        if self.previous is None:
            return None
        media = self.previous_manifest.get("media") or {}
        for old_rel, entry in sorted(media.items(), key=lambda item: item[0] != rel):
            if not isinstance(entry, dict) or entry.get("key") != key:
                continue
            old = self.previous / old_rel
            try:
                if old.is_symlink() or not old.is_file() or old.stat().st_size != entry.get("size"):
                    continue
            except OSError:
                continue
            if sha256_file(old) == self.previous_manifest["files"].get(old_rel):
                return old
        return None

    def link_from_previous(self, old: Path, new: Path) -> None:
        new.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(old, new)
        except OSError as exc:
            if out_of_space(exc):
                raise
            shutil.copyfile(old, new)  # a file system without hard links

    def publish(self) -> None:
        """Switch the target to the staging folder in one rename, then remove the other release folders."""
        empty = sorted(
            str(p.relative_to(self.staging)) for p in self.staging.rglob("*") if p.is_file() and p.stat().st_size == 0 and p.suffix not in MAY_BE_EMPTY
        )
        if empty:
            raise TalkvidError(f"release {self.release_id} not published: empty file(s) {', '.join(empty)}")
        token = self.staging.name.rsplit(".", 1)[1]
        if self.target.is_dir() and not self.target.is_symlink():  # an empty folder, or a release from before links
            if any(self.target.iterdir()):
                self.target.rename(self.parent / f".{self.name}.legacy-{token}")
            else:
                self.target.rmdir()
        link = self.parent / f".{self.name}.link-{token}"
        os.symlink(self.staging.name, link)  # relative: the release moves with its parent folder
        checkpoint()
        os.replace(link, self.target)
        checkpoint()
        self._sweep(keep=self.staging)

    def _sweep(self, keep: Path) -> None:
        for path in self.parent.iterdir():
            if path != keep and self._ours(path) and path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            elif path.name.startswith(f".{self.name}.link-") and path.is_symlink():
                path.unlink()

    def _unlock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing drops the flock
            self._lock = None

    def __exit__(self, kind, exc, tb) -> None:
        try:
            if exc is not None and self.target.resolve() != self.staging.resolve():  # a failure before the switch
                shutil.rmtree(self.staging, ignore_errors=True)
        finally:
            self._unlock()
