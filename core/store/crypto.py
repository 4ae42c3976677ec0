"""Encryption at rest of gem text and everything derived from it (cryptography's Fernet / MultiFernet).

Off unless ``LATTICE_ENCRYPTION_KEYS`` holds one or more comma-separated Fernet keys,
newest first (``python -m core keys generate`` prints a new one). When on, these are
stored as ``fernet:<token>`` (AES-128-CBC + HMAC-SHA256, with a timestamp), written under
the newest key:

- gem ``content`` and gem ``title`` (a title is often the content's first line or a
  Markdown heading of it);
- a reflection's ``query`` and ``answer`` (the answer quotes gems);
- the ``title`` and ``content`` values that the transaction log keeps (edits, deletions);
- snapshots: a snapshot copies the rows as stored, so its titles and contents are the
  same tokens (a snapshot of an encrypted lattice is encrypted; restoring it needs a key
  that wrote it).

Any listed key decrypts (MultiFernet), so old keys keep working until ``python -m core
keys rotate`` has re-encrypted every one of these values under the newest key (in
committed batches: an interrupted rotation is simply rerun).

Not encrypted (visible to whoever reads the database or a snapshot): gem ids, tags,
sources, state numbers, entanglements, timestamps, versions, actors, reflection score
terms and provider traces, and embeddings. An embedding of the default ``hashing-v1``
embedder is a public function of the words: anyone can embed candidate words and compare
(a dictionary attack), so it reveals the words of an encrypted gem; keep the database
private anyway (README, "Reliability and security").

A stored title must fit its column (500 characters) as a token: with encryption on a
title is at most :data:`MAX_ENCRYPTED_TITLE_BYTES` bytes of UTF-8 (a title derived from
the content is shortened to fit; a longer explicit one is refused).

Plaintext rows (written before encryption was switched on) stay readable and are
encrypted by the next rotation. Keys are never logged, printed (except by ``keys
generate``), stored in the database or in a snapshot.
"""
from __future__ import annotations

import os
import re
from typing import Sequence

from core.store.errors import EncryptionError

ENV_KEYS = "LATTICE_ENCRYPTION_KEYS"
PREFIX = "fernet:"
# a stored token: the prefix, then a Fernet token (version byte 0x80, so "gAAAAA...", url-safe
# base64); text that merely starts with "fernet:" is plain text
_TOKEN = re.compile(r"fernet:gAAAAA[A-Za-z0-9_-]+=*")
TITLE_COLUMN_CHARS = 500  # gems.title is VARCHAR(500)
MAX_ENCRYPTED_TITLE_BYTES = 303  # the longest UTF-8 title whose "fernet:" token fits 500 characters


def generate_key() -> str:
    from cryptography.fernet import Fernet
    return Fernet.generate_key().decode()


class ContentCipher:
    """Encrypts/decrypts content strings; a pass-through when no keys are configured."""

    def __init__(self, keys: Sequence[str] | None = None):
        self.keys = [k.strip() for k in (keys or []) if k and k.strip()]
        self._fernets = []
        if self.keys:
            from cryptography.fernet import Fernet, MultiFernet
            for n, key in enumerate(self.keys, 1):
                try:
                    self._fernets.append(Fernet(key.encode()))
                except (ValueError, TypeError):
                    # never echo the key itself
                    raise EncryptionError(f"{ENV_KEYS}: key #{n} is not a valid Fernet key (44 characters of "
                                          "url-safe base64; make one with `python -m core keys generate`)") from None
            self._multi = MultiFernet(self._fernets)

    @classmethod
    def from_env(cls) -> "ContentCipher":
        return cls((os.environ.get(ENV_KEYS) or "").split(","))

    @property
    def enabled(self) -> bool:
        return bool(self._fernets)

    @staticmethod
    def is_encrypted(value: str | None) -> bool:
        return isinstance(value, str) and value.startswith(PREFIX) and _TOKEN.fullmatch(value) is not None

    def encrypt(self, text: str) -> str:
        if not self.enabled:
            return text
        return PREFIX + self._fernets[0].encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, value: str | None) -> str | None:
        if not self.is_encrypted(value):
            return value
        if not self.enabled:
            raise EncryptionError(f"gem content (or a title, log value or reflection) is encrypted but no keys are configured; set {ENV_KEYS} "
                                  "to the keys it was written with")
        from cryptography.fernet import InvalidToken
        try:
            return self._multi.decrypt(value[len(PREFIX):].encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError):
            raise EncryptionError(f"gem content cannot be decrypted with any key in {ENV_KEYS} (a key that "
                                  "encrypted it was removed before `python -m core keys rotate` finished?)") from None

    def is_current(self, value: str | None) -> bool:
        """True if ``value`` is encrypted under the newest key (nothing to rotate)."""
        if not self.enabled or not self.is_encrypted(value):
            return False
        from cryptography.fernet import InvalidToken
        try:
            self._fernets[0].decrypt(value[len(PREFIX):].encode("ascii"))
            return True
        except (InvalidToken, ValueError):
            return False

    def rotate(self, value: str) -> str:
        """``value`` (plaintext or a token under any key) encrypted under the newest key."""
        return self.encrypt(self.decrypt(value) or "")
