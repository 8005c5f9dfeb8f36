"""What every stage gets: settings, a catalog session factory, and a way to record its run."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from talkvid_ops.catalog.db import session_factory
from talkvid_ops.catalog.runs import stage_run
from talkvid_ops.config import Settings


@dataclass
class Context:
    settings: Settings

    @classmethod
    def from_env(cls) -> Context:
        return cls(Settings.from_env())

    @property
    def config(self):
        return self.settings.pipeline

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.settings.database_url)

    def run(self, stage: str, params: dict[str, Any] | None = None):
        """Context manager recording a `run` row for this stage execution."""
        return stage_run(self.sessions, stage, params)
