"""Progress of long work. Stages call `tick`; the CLI `install`s a reporter when stderr is a
terminal (a live line), so libraries and tests see no output and pay one None check."""
from __future__ import annotations

import sys
from typing import Callable

Reporter = Callable[[str, int, int], None]
_reporter: Reporter | None = None


def install(reporter: Reporter | None) -> None:
    global _reporter
    _reporter = reporter


def tick(what: str, done: int, total: int) -> None:
    if _reporter is not None:
        _reporter(what, done, total)


def terminal_line(what: str, done: int, total: int) -> None:
    """The default reporter: one rewritten line on stderr, cleared when done."""
    if done >= total:
        sys.stderr.write("\r\033[K")
    else:
        sys.stderr.write(f"\r\033[Korch: {what} {done}/{total}")
    sys.stderr.flush()
