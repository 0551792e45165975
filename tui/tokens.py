"""The API token: where it comes from and what a usable one is (no server imports here,
so the dashboard's ``--attach`` path reads a token without loading aiohttp)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

TOKEN_ENV = "MINERTOP_TOKEN"
MIN_TOKEN_LENGTH = 16


class ListenError(Exception):
    """One line: why the daemon refuses to listen (non-loopback without a token, bad HOST:PORT,
    a port already in use, an unusable token)."""


def _check_token(token: str, source: str) -> str:
    if len(token) < MIN_TOKEN_LENGTH:
        raise ListenError(
            f"the token from {source} is too short: use at least {MIN_TOKEN_LENGTH} characters "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    if any(ch.isspace() or not ch.isprintable() for ch in token):
        raise ListenError(f"the token from {source} contains whitespace or control characters")
    return token


def load_token(token_file: Path | None, environ: Mapping[str, str]) -> str | None:
    """The API token: ``--token-file`` wins over ``$MINERTOP_TOKEN``; None when neither is set.

    Surrounding whitespace (the file's trailing newline) is stripped.  An unreadable or empty
    file, or a token shorter than 16 characters, raises ListenError (never quoting the token).
    Check :func:`token_file_too_open` separately and warn.
    """
    if token_file is not None:
        try:
            raw = Path(token_file).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ListenError(f"token file {token_file} is not UTF-8 text") from None
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ListenError(f"can't read token file {token_file}: {reason}") from None
        token = raw.strip()
        if not token:
            raise ListenError(f"token file {token_file} is empty")
        return _check_token(token, f"token file {token_file}")
    token = environ.get(TOKEN_ENV, "").strip()
    if not token:
        return None
    return _check_token(token, f"${TOKEN_ENV}")


def token_file_too_open(path: Path) -> bool:
    """True when the token file is readable or writable by group or others (mode & 0o077);
    the caller should log a warning (``chmod 600 PATH``).  False when it can't be stat'ed."""
    try:
        mode = Path(path).stat().st_mode
    except OSError:
        return False
    return bool(mode & 0o077)
