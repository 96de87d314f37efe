"""Encryption of sensitive fields at rest (Fernet: AES-128-CBC + HMAC-SHA256).

The key comes from COMPLIANCE_SECRET_KEY (any string; it is stretched with SHA-256). Without one, a
random key is written once to <data_dir>/secret.key (mode 0600) so a single-machine install works;
production sets the variable (and keeps it out of the database's backups)."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

PREFIX = "enc1:"


class Crypto:
    def __init__(self, key: str) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(key.encode()).digest()))

    @classmethod
    def from_settings(cls, secret_key: str, data_dir: Path) -> "Crypto":
        if secret_key:
            return cls(secret_key)
        path = Path(data_dir) / "secret.key"
        if not path.exists():
            # Written aside, then linked into place: processes starting together (API and workers
            # on one volume) all end up with the one key that won, never with a half-written file.
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".secret.key.{os.getpid()}.{secrets.token_hex(4)}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, secrets.token_urlsafe(32).encode())
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
        return cls(path.read_text().strip())

    def encrypt(self, text: str | None) -> str | None:
        if text is None or text == "":
            return text
        return PREFIX + self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, value: str | None) -> str | None:
        """Plain values (written before encryption was configured) pass through unchanged."""
        if not value or not value.startswith(PREFIX):
            return value
        try:
            return self._fernet.decrypt(value[len(PREFIX):].encode("ascii")).decode("utf-8")
        except InvalidToken:
            return None  # encrypted under another key: unreadable, never shown as ciphertext
