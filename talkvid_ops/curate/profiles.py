"""Threshold profiles: YAML files validated against a schema and versioned by the hash of their content.

A profile is a list of named criteria; each criterion has rules in order of preference, one per backend that can
measure it (production backends first). For a clip, the first rule whose backend scored the clip applies; a clip
with no usable score for a criterion is undecided. `backend: any` matches a metric from whichever backend wrote it.
"""

from __future__ import annotations

from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from talkvid_ops.errors import ConfigError, format_validation_error
from talkvid_ops.ids import content_hash
from talkvid_ops.score.metrics import get_metric

ANY_BACKEND = "any"
SHIPPED_PACKAGE = "talkvid_ops.curate.shipped_profiles"


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: str
    metric: str
    min: float | None = None
    max: float | None = None
    note: str | None = Field(None, description="where the threshold comes from (paper, code, calibration)")

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        if get_metric(metric) is None:
            raise ValueError(f"unknown metric {metric!r}")
        return metric

    @model_validator(mode="after")
    def _check(self) -> "Rule":
        metric = get_metric(self.metric)
        if self.backend != ANY_BACKEND and self.backend not in metric.backends:
            raise ValueError(
                f"backend {self.backend!r} does not write {self.metric!r} (written by: {', '.join(metric.backends)})"
            )
        if self.min is None and self.max is None:
            raise ValueError("a rule needs min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


class Criterion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    rules: list[Rule] = Field(min_length=1)


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    criteria: dict[str, Criterion] = Field(min_length=1)

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @cached_property
    def content_hash(self) -> str:
        return content_hash(self.body())

    def with_thresholds(self, overrides: dict[str, dict[str, float | None]], name: str | None = None) -> "Profile":
        """A derived profile with per-criterion bounds replaced, e.g. {"avg_movement": {"min": 85}}.

        The bounds apply to every rule of the criterion; the result is validated like a file would be.
        """
        body = self.body()
        for criterion, bounds in overrides.items():
            if criterion not in body["criteria"]:
                raise ConfigError(f"thresholds.{criterion}: no such criterion in profile {self.name!r}")
            for rule in body["criteria"][criterion]["rules"]:
                for key, value in bounds.items():
                    if key not in ("min", "max"):
                        raise ConfigError(f"thresholds.{criterion}.{key}: only min and max can be overridden")
                    rule[key] = value
        body["name"] = name or f"{self.name}.custom"
        return validate_profile(body, source="thresholds")


def validate_profile(data: Any, source: str = "profile") -> Profile:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: (top level): expected a mapping with name and criteria")
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise format_validation_error(source, exc) from None


def shipped_profiles() -> dict[str, Path]:
    folder = resources.files(SHIPPED_PACKAGE)
    return {Path(p.name).stem: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml")}


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name, or a YAML file by path."""
    shipped = shipped_profiles()
    path = shipped.get(str(name_or_path)) or Path(name_or_path)
    if not path.exists():
        raise ConfigError(
            f"profile {str(name_or_path)!r}: neither a shipped profile ({', '.join(sorted(shipped))}) nor a file"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return validate_profile(data, source=str(path))
