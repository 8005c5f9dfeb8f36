"""The content hash of a file (sha256, hex), read in blocks so that a large video never sits in memory, either on
its own (`sha256_file`) or while another reader goes through the file (`HashingReader`: the probe reads a file once
for its own checks and its hash)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

BLOCK = 1 << 20


def sha256_file(path: str | Path, chunk: int = BLOCK) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class HashingReader(io.RawIOBase):
    """A binary file whose sha256 builds up as it is read: the hash covers the bytes in file order, so a read
    past what is hashed so far (after a seek forward, e.g. to an index at the end) first hashes the gap, and a
    read of bytes hashed already adds nothing. `hexdigest()` hashes what nobody read and returns the file's hash."""

    def __init__(self, path: str | Path, chunk: int = BLOCK):
        super().__init__()
        self.handle = open(path, "rb")  # noqa: SIM115 - closed with this reader
        self.chunk = chunk
        self.digest = hashlib.sha256()
        self.hashed = 0  # bytes [0, hashed) are in the digest

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.handle.seek(offset, whence)

    def tell(self) -> int:
        return self.handle.tell()

    def _hash_up_to(self, position: int) -> None:
        """Hash the bytes [hashed, position) that nobody read, then come back to where the reader was."""
        if position <= self.hashed:
            return
        back = self.handle.tell()
        self.handle.seek(self.hashed)
        while self.hashed < position and (block := self.handle.read(min(self.chunk, position - self.hashed))):
            self.digest.update(block)
            self.hashed += len(block)
        self.handle.seek(back)

    def readinto(self, buffer) -> int:
        start = self.handle.tell()
        self._hash_up_to(start)
        count = self.handle.readinto(buffer)
        if count and start + count > self.hashed:
            self.digest.update(memoryview(buffer)[self.hashed - start : count])
            self.hashed = start + count
        return count

    def hexdigest(self) -> str:
        self._hash_up_to(self.handle.seek(0, io.SEEK_END))
        return self.digest.hexdigest()

    def close(self) -> None:
        self.handle.close()
        super().close()
