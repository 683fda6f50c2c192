"""Encryption at rest for tokens and client secrets (cryptography Fernet).

The key comes from RELANCE_SECRET_KEY (a Fernet key, for containers and CI) or from
`<config dir>/.relance.key`, created once with mode 0600 and never overwritten.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from connectors.base import ConnectionSetupError

KEY_ENV = "RELANCE_SECRET_KEY"
KEY_FILE_NAME = ".relance.key"


def _check_key(key: bytes, origin: str) -> bytes:
    try:
        Fernet(key)
    except (ValueError, TypeError):
        raise ConnectionSetupError(
            f"{origin} is not a valid Fernet key",
            hint='generate one with: python -c "from cryptography.fernet import Fernet; '
            'print(Fernet.generate_key().decode())"',
        ) from None
    return key


def load_key(config_dir: Path) -> bytes:
    """The secret key: RELANCE_SECRET_KEY, else the key file (created 0600 when absent)."""
    from_env = os.environ.get(KEY_ENV, "").strip()
    if from_env:
        return _check_key(from_env.encode("ascii", errors="replace"), KEY_ENV)
    path = Path(config_dir) / KEY_FILE_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _check_key(path.read_bytes().strip(), str(path))
    except OSError as error:
        raise ConnectionSetupError(f"{path}: cannot create the secret key file ({error.strerror})") from None
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
        handle.flush()
        os.fsync(handle.fileno())
    return key


class SecretBox:
    """Encrypt / decrypt short strings. Ciphertexts are URL-safe ASCII."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError):
            raise ConnectionSetupError(
                "cannot decrypt stored secrets with the current key",
                hint=f"use the {KEY_ENV} or {KEY_FILE_NAME} the tokens were saved with, "
                "or run `relance connect` again",
            ) from None

    def __repr__(self) -> str:
        return "SecretBox(<key redacted>)"
