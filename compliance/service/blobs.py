"""Content-addressed storage of uploaded recordings: <data_dir>/blobs/ab/cd/<sha256>.

A file is written to a temporary name while it is hashed, checked to be decodable audio, flushed to
disk, then renamed into place, so a stored blob is always complete and the same recording is kept
once. Nothing the client sends (its file name included) ever becomes part of a path."""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import av

from ..errors import AudioError

CHUNK = 1 << 20
#: how much audio the upload check decodes (the job decodes it all)
PROBE_SECONDS = 2.0

CONTENT_TYPES = {"flac": "audio/flac", "wav": "audio/wav", "mp3": "audio/mpeg", "ogg": "audio/ogg",
                 "mov,mp4,m4a,3gp,3g2,mj2": "audio/mp4", "matroska,webm": "audio/webm", "amr": "audio/amr",
                 "aac": "audio/aac", "asf": "audio/x-ms-wma", "aiff": "audio/aiff", "w64": "audio/wav"}


class TooLarge(Exception):
    pass


@dataclass
class StoredBlob:
    sha256: str
    size: int
    path: Path
    content_type: str
    format: str
    duration: float | None
    channels: int


def safe_filename(name: str | None, default: str = "upload") -> str:
    """A display name: last path component, no control or shell-special characters, <= 200 chars."""
    name = (name or "").replace("\\", "/").split("/")[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in "CZ" or ch == " ")
    name = re.sub(r"[<>:\"|?*\x00-\x1f]", "_", name).strip(" .")
    return name[:200] or default


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.tmp = self.root / "tmp"
        self.tmp.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", sha256):
            raise ValueError("not a sha256")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def spool(self, source: BinaryIO, max_bytes: int) -> tuple[Path, str, int]:
        """Copy a stream to a temporary file while hashing it; TooLarge past `max_bytes`."""
        tmp = self.tmp / f"{uuid.uuid4().hex}.part"
        digest = hashlib.sha256()
        size = 0
        try:
            with open(tmp, "wb") as out:
                while block := source.read(CHUNK):
                    size += len(block)
                    if size > max_bytes:
                        raise TooLarge(f"over the {max_bytes / 1e6:.0f} MB upload limit")
                    digest.update(block)
                    out.write(block)
                out.flush()
                os.fsync(out.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp, digest.hexdigest(), size

    def commit(self, tmp: Path, sha256: str, display_name: str) -> StoredBlob:
        """Check that a spooled file is audio, then move it into place (or drop it: already stored)."""
        try:
            if tmp.stat().st_size == 0:
                raise AudioError(f"{display_name}: empty file (0 bytes)")
            fmt, duration, channels = probe_audio(tmp, display_name)
            final = self.path(sha256)
            final.parent.mkdir(parents=True, exist_ok=True)
            if final.is_file():
                tmp.unlink()
            else:
                os.replace(tmp, final)
                _fsync_dir(final.parent)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return StoredBlob(sha256=sha256, size=final.stat().st_size, path=final,
                          content_type=CONTENT_TYPES.get(fmt, "application/octet-stream"), format=fmt,
                          duration=duration, channels=channels)

    def discard(self, tmp: Path) -> None:
        tmp.unlink(missing_ok=True)


def probe_audio(path: Path, display_name: str) -> tuple[str, float | None, int]:
    """Open the file with FFmpeg and decode its first seconds: AudioError if that fails."""
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError, OSError) as exc:
        raise AudioError(f"{display_name}: not a readable audio file ({_short(exc)})") from None
    with container:
        if not container.streams.audio:
            raise AudioError(f"{display_name}: contains no audio stream")
        stream = container.streams.audio[0]
        channels = stream.codec_context.channels or 1
        decoded = 0.0
        try:
            for frame in container.decode(stream):
                decoded += frame.samples / float(frame.sample_rate or 16000)
                if decoded >= PROBE_SECONDS:
                    break
        except av.FFmpegError as exc:
            if decoded == 0:
                raise AudioError(f"{display_name}: corrupt or unsupported audio ({_short(exc)})") from None
        if decoded == 0:
            raise AudioError(f"{display_name}: no audio could be decoded")
        duration = None
        if container.duration is not None:
            duration = container.duration / 1_000_000
        elif stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        return container.format.name, duration, channels


def _short(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[-1].strip() if ":" in text else text


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
