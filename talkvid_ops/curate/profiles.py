"""Threshold profiles: YAML files validated against a schema and versioned by the hash of their content.

A profile is a list of named criteria; each criterion has rules in order of preference, one per backend that can
measure it (production backends first). For a clip, the first rule whose backend scored the clip applies; a clip
with no usable score for a criterion is undecided. `backend: any` matches a metric from whichever backend wrote it.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from talkvid_ops.catalog.metrics import get_metric
from talkvid_ops.errors import ConfigError
from talkvid_ops.ids import content_hash
from talkvid_ops.yamlfile import load_shipped_or_file, shipped_yaml, validate_mapping

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
    def _check(self) -> Rule:
        metric = get_metric(self.metric)
        if self.backend != ANY_BACKEND and self.backend not in metric.backends:
            raise ValueError(f"backend {self.backend!r} does not write {self.metric!r} (written by: {', '.join(metric.backends)})")
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
    overrides: list[dict[str, Any]] | None = Field(
        None, description="the thresholds moved from the profile this one derives from (`with_thresholds`), in order"
    )

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @cached_property
    def content_hash(self) -> str:
        return content_hash(self.body())

    def with_thresholds(self, overrides: dict[str, dict[str, Any]], name: str | None = None) -> Profile:
        """A derived profile with per-criterion bounds replaced, e.g. {"avg_movement": {"min": 85}}.

        The bounds apply to every rule of the criterion when its rules share one metric; when they measure on
        different scales (quality: DOVER 0-10 vs classical 0-100), `backend` must say which rule the bounds are for:
        {"quality": {"backend": "dover", "min": 7.5}}. The result is validated like a file would be.
        """
        body = self.body()
        for criterion, bounds in overrides.items():
            where = f"thresholds.{criterion}"
            if criterion not in body["criteria"]:
                raise ConfigError(f"{where}: no such criterion in profile {self.name!r} ({', '.join(body['criteria'])})")
            unknown = set(bounds) - {"min", "max", "backend"}
            if unknown:
                raise ConfigError(f"{where}.{sorted(unknown)[0]}: only min, max and backend can be given")
            rules = body["criteria"][criterion]["rules"]
            backend = bounds.get("backend")
            if backend is not None:
                rules = [r for r in rules if r["backend"] == backend]
                if not rules:
                    backends = ", ".join(r["backend"] for r in body["criteria"][criterion]["rules"])
                    raise ConfigError(f"{where}.backend: {backend!r} has no rule in this criterion ({backends})")
            elif len({r["metric"] for r in rules}) > 1:
                scales = ", ".join(f"{r['backend']}: {r['metric']}" for r in rules)
                raise ConfigError(f"{where}: its rules measure on different scales ({scales}); add backend to say which")
            for rule in rules:
                rule.update({k: v for k, v in bounds.items() if k in ("min", "max")})
            body.setdefault("overrides", []).append({"criterion": criterion, **bounds})
        body["name"] = name or f"{self.name}.custom"
        return validate_profile(body, source="thresholds")


def override_text(override: dict[str, Any]) -> str:
    """One threshold override as a curator reads it: `quality[dover] min=7.5`."""
    backend = f"[{override['backend']}]" if override.get("backend") else ""
    bounds = " ".join(f"{k}={override[k]}" for k in ("min", "max") if k in override)
    return f"{override['criterion']}{backend} {bounds}"


TOP_LEVEL = "a mapping with name and criteria"


def validate_profile(data: Any, source: str = "profile") -> Profile:
    return validate_mapping(Profile, data, source, TOP_LEVEL)


def shipped_profiles() -> dict[str, Path]:
    return shipped_yaml(SHIPPED_PACKAGE)


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name, or a YAML file by path."""
    return load_shipped_or_file(Profile, name_or_path, SHIPPED_PACKAGE, "profile", TOP_LEVEL)


def as_profile(profile: Profile | str | Path) -> Profile:
    """A profile as is, or loaded by `load_profile`."""
    return profile if isinstance(profile, Profile) else load_profile(profile)
