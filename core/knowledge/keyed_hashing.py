"""``hashing-v1-keyed``: the hashing embedder with a secret key, for encrypted lattices.

``hashing-v1`` puts each word, trigram and bigram in column ``crc32(feature) % dim``: a
public function, so anyone holding an embedding can embed candidate words and compare (a
dictionary attack), which reveals the words of a gem whose text is encrypted. Here the
column and sign come from ``HMAC-SHA256(key, feature)`` instead, with the key from
``LATTICE_EMBEDDING_KEY`` (at least 32 characters, e.g. ``python -c "import secrets;
print(secrets.token_urlsafe(32))"``): without the key the columns are unknown, so the
embeddings cannot be matched against guessed words. Same features, weights and
normalisation as ``hashing-v1`` otherwise (so the same ranking quality).

The key is part of the embedding: queries must be embedded with the key the lattice was
embedded with. Changing it means re-embedding (``python -m core reembed <lattice>
hashing-v1-keyed`` with the new key set). The key is never logged or stored.
"""
from __future__ import annotations

import hashlib
import hmac
import os

from core.errors import LatticeError
from core.knowledge.hashing import HashingEmbedder

ENV_KEY = "LATTICE_EMBEDDING_KEY"
MIN_KEY_CHARS = 32


class KeyedHashingEmbedder(HashingEmbedder):
    """:class:`HashingEmbedder` with HMAC-SHA256 feature hashing under a secret key."""

    def __init__(self, dim: int = 1024, key: str | None = None):
        key = os.environ.get(ENV_KEY, "") if key is None else key
        if len(key.strip()) < MIN_KEY_CHARS:
            raise LatticeError(f"the embedder hashing-v1-keyed needs a secret key: set {ENV_KEY} to at least "
                               f"{MIN_KEY_CHARS} random characters (e.g. the output of python -c \"import secrets; "
                               "print(secrets.token_urlsafe(32))\"), the same for every process of this database")
        self._key = key.strip().encode("utf-8")
        super().__init__(dim)
        self.name = "hashing-v1-keyed" if self.dim == 1024 else f"hashing-v1-keyed-{self.dim}"

    def _hash(self, feature: str, quarters: int) -> tuple[int, int]:
        h = int.from_bytes(hmac.new(self._key, feature.encode("utf-8"), hashlib.sha256).digest()[:8], "little")
        return h % self.dim, quarters if (h >> 63) & 1 else -quarters

    def __repr__(self) -> str:  # never show the key
        return f"KeyedHashingEmbedder(dim={self.dim})"
