"""clips.parquet: the candidate rows of clips.jsonl as a typed table (scores and labels as their own columns)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SCALARS = {
    "clip_id": "string", "video_id": "string", "source_id": "string", "platform": "string", "platform_id": "string",
    "video_url": "string", "license": "string", "start_time": "float64", "end_time": "float64", "start_frame": "int64",
    "end_frame": "int64", "fps": "float64", "duration": "float64", "speech_coverage": "float64",
    "source_description": "string", "caption": "string", "asr_language": "string", "asr_language_probability": "float64", "decision": "string", "split": "string",
    "bench_subbenchmark": "string", "bench_stratum": "string",
}  # fmt: skip
LINEAGE = {"video_run_id": "string", "segment_run_id": "string", "segmenter": "string", "segment_params_hash": "string",
           "decision_run_id": "string"}  # fmt: skip
LABEL_FIELDS = {"value": "string", "provenance": "string", "confidence": "float64", "origin": "string"}


def write_parquet(rows: list[dict[str, Any]], path: Path, label_names: tuple[str, ...]) -> Path:
    """One row per candidate clip; columns `score.<backend>.<metric>` for every score any clip has."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    score_columns = sorted({key for row in rows for key in row["scores"]})
    failing_type = pa.list_(pa.struct([("criterion", pa.string()), ("metric", pa.string()), ("backend", pa.string()),
                                       ("value", pa.float64()), ("min", pa.float64()), ("max", pa.float64())]))  # fmt: skip
    fields = [pa.field(name, getattr(pa, kind)()) for name, kind in SCALARS.items()]
    fields += [pa.field("failing_criteria", pa.list_(pa.string())), pa.field("missing_criteria", pa.list_(pa.string())),
               pa.field("failing", failing_type)]  # fmt: skip
    fields += [pa.field(f"lineage.{name}", getattr(pa, kind)()) for name, kind in LINEAGE.items()]
    fields += [pa.field("lineage.score_run_ids", pa.list_(pa.string()))]
    fields += [pa.field(f"label.{label}.{part}", getattr(pa, kind)()) for label in label_names for part, kind in LABEL_FIELDS.items()]
    fields += [pa.field(f"score.{column}", pa.float64()) for column in score_columns]
    schema = pa.schema(fields)

    def flat(row: dict[str, Any]) -> dict[str, Any]:
        out = {name: row[name] for name in SCALARS}
        out.update(failing_criteria=row["failing_criteria"], missing_criteria=row["missing_criteria"], failing=row["failing"])
        out.update({f"lineage.{name}": row["lineage"][name] for name in LINEAGE})
        out["lineage.score_run_ids"] = row["lineage"]["score_run_ids"]
        for label in label_names:
            resolved = row["labels"].get(label, {})
            out.update({f"label.{label}.{part}": resolved.get(part) for part in LABEL_FIELDS})
        out.update({f"score.{column}": row["scores"].get(column) for column in score_columns})
        return out

    table = pa.Table.from_pylist([flat(row) for row in rows], schema=schema)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    return path
