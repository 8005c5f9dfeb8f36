"""Deterministic ids: a hash of a row's natural key, so a rerun updates instead of duplicating."""

from __future__ import annotations

import hashlib
import json
from typing import Any

ID_HEX_LENGTH = 24  # 96 bits: collision-free at billions of rows, still readable in logs


def _canonical(part: Any) -> str:
    if isinstance(part, float):
        return repr(round(part, 6))
    if isinstance(part, (dict, list, tuple)):
        return json.dumps(part, sort_keys=True, separators=(",", ":"), default=str)
    return str(part)


def make_id(kind: str, *natural_key: Any) -> str:
    """Id for a `kind` row from its natural key parts (order matters)."""
    text = "\x1f".join([kind, *(_canonical(p) for p in natural_key)])
    # surrogateescape: a file name that is not UTF-8 (kept by os.fsdecode as lone surrogates) hashes by its bytes
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:ID_HEX_LENGTH]


def content_hash(payload: Any, length: int = 16) -> str:
    """Stable hash of a JSON-able payload (parameters, profiles, specs)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]
