"""The one error of the media layer: a fault of a media file (or a range of it), named by its kind.

Stages catch this class alone for media faults. The kind (`MediaFault`) is stored with the message where the
catalog keeps one (segment's error class); only a missing file is worth a retry, every other kind is a property
of the file.
"""

from __future__ import annotations

from talkvid_ops.catalog.status import MediaFault
from talkvid_ops.errors import TalkvidError


class MediaError(TalkvidError):
    """A fault of the media file itself: its `kind` and the message stored in the catalog."""

    def __init__(self, kind: MediaFault, message: str):
        super().__init__(message)
        self.kind = kind

    @property
    def permanent(self) -> bool:
        return self.kind != MediaFault.MISSING
