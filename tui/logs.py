"""Where the ``minertop`` logger writes, for each face (no Textual here).

- **daemon**: one line per event on stderr (journald adds the time and marks the level from
  the ``<N>`` prefix when ``$JOURNAL_STREAM`` says stderr is the journal; elsewhere each line
  starts with an ISO time), plus ``--log FILE`` with the same lines and whole tracebacks.
- **dashboard**: nothing on the terminal (Textual owns it: errors are shown in the panes and
  as toasts); ``--log FILE`` records everything, tracebacks included.
- **once**: errors only, one line each on stderr (the numbers go to stdout); ``--log FILE``
  records the tracebacks.

Secrets never reach a log line: the code that logs names hosts, never URLs with
credentials, headers or tokens.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Literal

Face = Literal["daemon", "dashboard", "once"]
LOGGER = "minertop"
_SYSLOG = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3,
           logging.CRITICAL: 2}


class LogSetupError(Exception):
    """``--log FILE`` can't be opened: one line."""


class _OneLine(logging.Formatter):
    """The message on one line; a traceback, if any, is summed up in its last line."""

    def __init__(self, journal: bool, prefix: str = "") -> None:
        super().__init__()
        self.journal = journal
        self.prefix = prefix

    def format(self, record: logging.LogRecord) -> str:
        msg = " ".join(record.getMessage().split())
        if record.exc_info and record.exc_info[1] is not None:
            e = record.exc_info[1]
            msg += f" ({type(e).__name__}: {' '.join(str(e).split())})"
        if self.journal:
            return f"<{_SYSLOG.get(record.levelno, 6)}>{self.prefix}{msg}"
        if self.prefix:
            return f"{self.prefix}{msg}"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(record.created))
        return f"{stamp} {record.levelname.lower()} {msg}"


def _file_handler(path: Path) -> logging.Handler:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        h = logging.FileHandler(path, encoding="utf-8")
    except OSError as e:
        raise LogSetupError(f"--log {path}: {e.strerror or e}") from None
    h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    h.setLevel(logging.DEBUG)
    return h


def setup_logging(face: Face, log_file: Path | None = None, *, verbose: bool = False,
                  stream: object = None) -> logging.Logger:
    """Configure the ``minertop`` logger for one face (replacing earlier handlers)."""
    logger = logging.getLogger(LOGGER)
    for old in list(logger.handlers):
        logger.removeHandler(old)
        old.close()
    logger.propagate = False  # never Python's last-resort handler on a Textual screen
    logger.setLevel(logging.DEBUG if verbose or log_file else logging.INFO)
    out = stream if stream is not None else sys.stderr
    if face == "daemon":
        h: logging.Handler = logging.StreamHandler(out)  # type: ignore[arg-type]
        h.setFormatter(_OneLine(journal=bool(os.environ.get("JOURNAL_STREAM"))))
        h.setLevel(logging.DEBUG if verbose else logging.INFO)
        logger.addHandler(h)
    elif face == "once":
        h = logging.StreamHandler(out)  # type: ignore[arg-type]
        h.setFormatter(_OneLine(journal=False, prefix="minertop: "))
        h.setLevel(logging.ERROR)
        logger.addHandler(h)
    else:
        logger.addHandler(logging.NullHandler())
    if log_file is not None:
        logger.addHandler(_file_handler(log_file))
    # Libraries that log on their own (aiohttp's access log is off; asyncio's "Task
    # exception was never retrieved") go to the same places.
    for name in ("asyncio", "aiohttp"):
        lib = logging.getLogger(name)
        lib.handlers = list(logger.handlers)
        lib.propagate = False
        lib.setLevel(logging.WARNING)
    return logger
