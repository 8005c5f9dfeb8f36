"""YAML files as typed models (the pipeline config, threshold profiles, bench specs): every failure is one
ConfigError naming the file and the offending fields."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from talkvid_ops.errors import ConfigError, format_validation_error

Model = TypeVar("Model", bound=BaseModel)


def validate_mapping(model: type[Model], data: Any, source: str, expected: str) -> Model:
    """`data` validated as `model`; `expected` says what the top level must be (e.g. "a mapping with name and criteria")."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: (top level): expected {expected}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise format_validation_error(source, exc) from None


def load_yaml_model(model: type[Model], path: str | Path, expected: str, kind: str = "file", empty_ok: bool = False) -> Model:
    """The YAML file at `path` validated as `model`; `empty_ok`: an empty file is an empty mapping (all defaults)."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as handle:  # a stream, so YAML errors name the file, not "<unicode string>"
            data = yaml.safe_load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: {kind} not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a {kind}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {kind}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (YAML must be UTF-8)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None and empty_ok:
        data = {}
    return validate_mapping(model, data, str(path), expected)


def shipped_yaml(package: str) -> dict[str, Path]:
    """name -> path of the YAML files shipped in `package`."""
    folder = resources.files(package)
    return {Path(p.name).stem: Path(str(p)) for p in folder.iterdir() if p.name.endswith(".yaml")}


def load_shipped_or_file(model: type[Model], name_or_path: str | Path, package: str, kind: str, expected: str) -> Model:
    """A `kind` shipped in `package` by name, or a YAML file by path, validated as `model`."""
    shipped = shipped_yaml(package)
    path = shipped.get(str(name_or_path)) or Path(name_or_path)
    if not path.exists():
        raise ConfigError(f"{kind} {str(name_or_path)!r}: neither a shipped {kind} ({', '.join(sorted(shipped))}) nor a file")
    return load_yaml_model(model, path, expected, kind)
