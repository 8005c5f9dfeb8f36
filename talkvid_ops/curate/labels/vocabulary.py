"""The label vocabulary: label names, their values in stored form (TalkVid's buckets; languages as ISO 639-1 codes,
ISO 639-3 where a language has no 639-1 code) and as releases show them. `Unknown` never counts."""

from __future__ import annotations

import re
from enum import StrEnum
from functools import lru_cache
from typing import Any

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

NAME_ALIASES = {"age": "age_group", "person_id": "person", "speaker": "person", "video_category": "category"}
_GENDER_WORDS = {"male": "male", "m": "male", "man": "male", "female": "female", "f": "female", "woman": "female"}
_ETHNICITY_WORDS = {
    "black": "Black", "african": "Black", "black (african)": "Black", "african american": "Black",
    "white": "White", "caucasian": "White", "asian": "Asian", "east asian": "Asian",
}  # fmt: skip


class Provenance(StrEnum):
    """Where a label came from, best first: a clip's label resolves to the best provenance it has."""

    HUMAN = "human"  # imported annotations
    ASR = "asr"  # the segment stage's language id
    METADATA = "metadata"  # the source's language hint
    ESTIMATED = "estimated"  # a model on sampled faces


PROVENANCE_RANK = {provenance: rank for rank, provenance in enumerate(Provenance)}


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


def canonical_column(key: str) -> str:
    name = re.sub(r"[\s\-]+", "_", key.strip().lower())
    return NAME_ALIASES.get(name, name)


def label_name(raw: str) -> str:
    """A label name as people write it ('Age Group', 'age', 'speaker'); ValueError naming the valid ones."""
    name = canonical_column(raw)
    if name not in LABEL_NAMES:
        raise ValueError(f"no labels match {raw!r}: label names are {', '.join(LABEL_NAMES)}")
    return name
