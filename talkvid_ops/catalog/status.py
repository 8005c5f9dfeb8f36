"""Every status and error class the catalog stores, as enums owned by the catalog.

They are `StrEnum`s, so a member is stored, compared and serialised as its plain string value: the catalog's columns
stay strings and a row read back compares equal to its member. Stage code names these members, never bare strings.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"  # finished, but some items failed
    FAILED = "failed"
    ABANDONED = "abandoned"  # its process died (killed, host lost): marked so by a later run


class SourceStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # throttled or bot-checked: resumes after its back-off


class VideoStatus(StrEnum):
    """A video's lifecycle: discovered -> probed | failed | rejected; an ingested file is probed, failed or a
    duplicate at once. Probed is the one usable state (segmentation is tracked by its own rows)."""

    DISCOVERED = "discovered"  # listed by its source, not downloaded yet
    PROBED = "probed"  # downloaded or ingested, verified by its probe: the file is in place
    FAILED = "failed"  # see its error class; transient and throttled failures are retried
    REJECTED = "rejected"  # the source's policy refuses it (duration, language, resolution)
    DUPLICATE = "duplicate"  # an ingested file whose content another probed video already has


class ErrorClass(StrEnum):
    """Why an item failed, and so whether a retry can help: the classes of a video's (and a source's) last error;
    `internal` is also a segmentation's, beside the media faults that segmentation names by kind."""

    PERMANENT = "permanent"  # the site will never serve it (gone, private, unsupported): never retried
    THROTTLED = "throttled"  # the site asked us to slow down: the source pauses, retried after its back-off
    TRANSIENT = "transient"  # timeouts, resets, 5xx, an unexpected fault on one item: retried by later runs
    MEDIA = "media"  # the file itself is broken or degenerate: not retried
    POLICY = "policy"  # refused by the source's settings: not retried
    SETUP = "setup"  # the source is set up wrong (cookies, URL list, folder): every run tries again
    INTERNAL = "internal"  # a fault of ours while segmenting: retried


class MediaFault(StrEnum):
    """What is wrong with a media file (`MediaError.kind`); segment stores it as its error class."""

    MISSING = "missing"  # not there (yet): the only fault worth a retry
    UNREADABLE = "unreadable"  # not openable as media
    ZERO_LENGTH = "zero_length"  # empty, or too short to be a video
    DEGENERATE = "degenerate"  # decodes, but its picture is too small to show anything (e.g. 1x1)
    NO_VIDEO = "no_video"
    NO_AUDIO = "no_audio"
    TRUNCATED = "truncated"  # its packets end well before the duration it declares
    UNDECODABLE = "undecodable"  # frames fail to decode
    EMPTY_RANGE = "empty_range"  # a clip range holds no frame
    ENCODE_FAILED = "encode_failed"  # ffmpeg could not cut or crop it


class Availability(StrEnum):
    UNKNOWN = "unknown"
    AVAILABLE = "available"
    GONE = "gone"


class SegmentationStatus(StrEnum):
    DONE = "done"
    FAILED = "failed"


class ScoringStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"


class CaptionStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"


class DecisionStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    UNDECIDED = "undecided"  # a criterion's score is missing


class BatchStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"


class RuleSide(StrEnum):
    """Which side of a profile rule's bounds a validation item's score lies on."""

    PASS = "pass"
    FAIL = "fail"


class Bound(StrEnum):
    MIN = "min"
    MAX = "max"


class Verdict(StrEnum):
    """A person's judgement of a validation item."""

    ACCEPT = "accept"
    REJECT = "reject"
