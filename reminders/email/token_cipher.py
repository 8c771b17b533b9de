"""Encryption of stored Google tokens: MultiFernet keyed from DEALBOT_SECRET_KEY.

The setting holds one secret, or several separated by commas with the newest first: tokens
are written with the first and read with any, so a key is rotated by putting the new one in
front, running `dealbot gmail rotate-key` (which re-encrypts every token), and then dropping
the old one. A secret that is already a Fernet key is used as is; any other text of at least
32 characters is stretched into one with HKDF.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MIN_SECRET_LENGTH = 32
_HKDF_SALT = b"dealbot/token-encryption/v1"

__all__ = ["InvalidToken", "SecretKeyError", "TokenCipher"]


class SecretKeyError(ValueError):
    """DEALBOT_SECRET_KEY is unusable; the message says why, without repeating it."""


def _fernet_key(secret: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(secret.encode("ascii"))
        if len(raw) == 32 and len(secret) == 44:
            return secret.encode("ascii")
    except (binascii.Error, UnicodeEncodeError, ValueError):
        pass
    if len(secret) < MIN_SECRET_LENGTH:
        raise SecretKeyError(
            f"each secret must be a Fernet key or at least {MIN_SECRET_LENGTH} characters "
            '(make one with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())")'
        )
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=_HKDF_SALT, info=b"fernet").derive(
        secret.encode("utf-8")
    )
    return base64.urlsafe_b64encode(derived)


class TokenCipher:
    """Encrypts and decrypts short secrets (refresh tokens, PKCE verifiers) for storage."""

    def __init__(self, *, secrets: Sequence[str]) -> None:
        if not secrets:
            raise SecretKeyError("no secret given")
        self._fernet = MultiFernet([Fernet(_fernet_key(secret)) for secret in secrets])

    @classmethod
    def from_setting(cls, value: str) -> TokenCipher:
        """Return a cipher for DEALBOT_SECRET_KEY: comma-separated secrets, newest first."""
        return cls(secrets=[part.strip() for part in value.split(",") if part.strip()])

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        """Return the plaintext; raise InvalidToken when no configured key opens it."""
        return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")

    def rotate(self, token: str) -> str:
        """Return `token` re-encrypted with the newest key."""
        return self._fernet.rotate(token.encode("ascii")).decode("ascii")
