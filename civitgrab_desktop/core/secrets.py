"""The API key: OS keychain (keyring) or the CIVITAI_API_KEY environment variable, never a file."""

from __future__ import annotations

import logging
import os

from civitgrab_desktop.core.config import ENV_API_KEY, register_secret

LOG = logging.getLogger(__name__)
SERVICE = "civitgrab"
ACCOUNT = "civitai_api_key"


class KeychainUnavailable(RuntimeError):
    pass


def _keyring():
    import keyring  # imported lazily: its backend discovery is slow

    return keyring


def keychain_name() -> str:
    try:
        backend = _keyring().get_keyring()
    except Exception as exc:  # pragma: no cover - depends on the OS
        return f"unavailable ({exc})"
    return f"{type(backend).__module__}.{type(backend).__name__}"


def load_api_key(explicit: str | None = None) -> str | None:
    """`--api-key` beats CIVITAI_API_KEY beats the keychain."""
    key = (explicit or "").strip() or os.environ.get(ENV_API_KEY, "").strip()
    if not key:
        try:
            key = (_keyring().get_password(SERVICE, ACCOUNT) or "").strip()
        except Exception as exc:  # no backend, locked keychain...
            LOG.info("keychain not readable: %s", type(exc).__name__)
            key = ""
    if key:
        register_secret(key)
    return key or None


def store_api_key(key: str) -> None:
    key = key.strip()
    if not key:
        raise ValueError("the API key is empty")
    try:
        _keyring().set_password(SERVICE, ACCOUNT, key)
        # Some backends (the null one, a locked store) accept the write and keep nothing.
        if _keyring().get_password(SERVICE, ACCOUNT) != key:
            raise RuntimeError("the keychain did not keep the key")
    except Exception as exc:
        raise KeychainUnavailable(
            f"the OS keychain is not available ({exc or type(exc).__name__}); "
            f"set the {ENV_API_KEY} environment variable instead"
        ) from exc
    register_secret(key)


def clear_api_key() -> bool:
    try:
        _keyring().delete_password(SERVICE, ACCOUNT)
        return True
    except Exception as exc:
        LOG.info("nothing removed from the keychain: %s", type(exc).__name__)
        return False


def mask(key: str | None) -> str:
    if not key:
        return ""
    return "•" * max(0, len(key) - 4) + key[-4:]
