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
    ABANDONED = "abandoned"  # its process died while running (found by a later run)


class SourceStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"  # throttled or bot-checked: resumes after its back-off


class VideoStatus(StrEnum):
    """A video's lifecycle: discovered -> probed | failed | rejected (segmentation is tracked by its own rows)."""

    DISCOVERED = "discovered"
    PROBED = "probed"
    FAILED = "failed"
    REJECTED = "rejected"  # the source's policy refuses it (duration, language, resolution)


class ErrorClass(StrEnum):
    """Why an item failed, and so whether a retry can help."""

    PERMANENT = "permanent"  # never retried (gone, private, not media)
    THROTTLED = "throttled"  # the site asked us to slow down: retried after a back-off
    TRANSIENT = "transient"  # retried on the next run
    MEDIA = "media"  # the file itself is broken or degenerate
    POLICY = "policy"  # refused by the source's settings
    SETUP = "setup"  # our configuration is wrong (cookies, URL list): fixed by the operator
    INTERNAL = "internal"  # a fault of ours: retried


class MediaFault(StrEnum):
    """What is wrong with a media file (`MediaError.kind`); segment stores it as its error class."""

    MISSING = "missing"  # not there (yet): the only fault worth a retry
    UNREADABLE = "unreadable"  # not openable as media
    ZERO_LENGTH = "zero_length"  # empty, or too short to be a video
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


class DecisionStatus(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    UNDECIDED = "undecided"  # a criterion's score is missing


class BatchStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
