"""`orch cache put|get|verify|gc|stats`: the store from the command line.

Exit codes follow `orchestrator.errors.ExitCode`: 0 ok, 1 failure (a miss, damage found),
2 bad usage or input, 3 environment (the cache directory cannot be used).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from typing import TYPE_CHECKING, Callable

from orchestrator.errors import ExitCode
from orchestrator.paths import default_cache_dir

if TYPE_CHECKING:  # the store is imported when a `cache` command runs, not by every `orch`
    from cache import Store

_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*", re.IGNORECASE)


def parse_size(text: str) -> int:
    """`10M`, `1.5G`, `500K`, `123` (bytes); binary units (`10M` = 10 MiB). ValueError if not."""
    m = _SIZE.fullmatch(text)
    if m is None:
        raise ValueError(f"not a size: {text!r} (examples: 500K, 10M, 1.5G, 123)")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _size_arg(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `cache` with its subcommands to an `orch` parser; sets `func=run`."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--cache-dir", metavar="DIR",
                        help="cache directory (default: $ORCH_CACHE_DIR, else $XDG_CACHE_HOME/orch)")
    top = subparsers.add_parser("cache", help="inspect and maintain the local store")
    sub = top.add_subparsers(dest="cache_command", required=True, metavar="SUBCOMMAND")

    p = sub.add_parser("put", parents=[common], help="store a file; prints its digest")
    p.add_argument("file", metavar="FILE")
    p = sub.add_parser("get", parents=[common], help="copy a blob out (verified)")
    p.add_argument("digest", metavar="DIGEST")
    p.add_argument("-o", "--output", required=True, metavar="FILE")
    p = sub.add_parser("verify", parents=[common], help="re-hash every blob, check every entry")
    p.add_argument("--repair", action="store_true", help="remove damaged blobs and dangling entries")
    p = sub.add_parser("gc", parents=[common], help="shrink the store (LRU) or keep only the plan")
    how = p.add_mutually_exclusive_group(required=True)
    how.add_argument("--max-size", type=_size_arg, metavar="SIZE", help="e.g. 10M, 1.5G (binary units)")
    how.add_argument("--keep-plan", action="store_true", help="keep exactly what the plan needs")
    p.add_argument("-t", "--tree", action="append", default=[], metavar="DIR")
    p.add_argument("--values", action="extend", nargs="+", default=[], metavar="FILE")
    p = sub.add_parser("stats", parents=[common], help="blobs, bytes, entries, hits and misses")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    top.set_defaults(func=run)


def _err(msg: str, code: ExitCode) -> int:
    print(f"orch: cache: {msg}", file=sys.stderr)
    return int(code)


def _put(s: Store, a: argparse.Namespace) -> int:
    try:
        print(s.put_file(a.file))
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        return _err(f"cannot read {a.file}: {e.strerror}", ExitCode.BAD_INPUT)
    return 0


def _get(s: Store, a: argparse.Namespace) -> int:
    try:
        found = s.get_file(a.digest, a.output)
    except (FileNotFoundError, IsADirectoryError, PermissionError, NotADirectoryError) as e:
        return _err(f"cannot write {a.output}: {e.strerror}", ExitCode.BAD_INPUT)
    if not found:
        return _err(f"{a.digest} is not in the store (or was damaged)", ExitCode.BUILD_FAILED)
    return 0


def _verify(s: Store, a: argparse.Namespace) -> int:
    report = s.verify(repair=a.repair)
    for line in report.lines():
        print(line)
    # like fsck: damage found is exit 1 even when repaired, so CI notices a poisoned cache
    return 0 if report.clean else int(ExitCode.BUILD_FAILED)


def _gc(s: Store, a: argparse.Namespace) -> int:
    if a.keep_plan:
        if not a.tree:
            return _err("gc --keep-plan needs at least one -t TREE", ExitCode.BAD_INPUT)
        try:
            from orchestrator.app import plan_keys
        except ImportError:
            return _err("gc --keep-plan is not available in this build", ExitCode.ENVIRONMENT)
        report = s.gc_keep(plan_keys(a.tree, a.values, str(s.root)))
    else:
        report = s.gc_max_size(a.max_size)
    for line in report.lines():
        print(line)
    return 0


def _stats(s: Store, a: argparse.Namespace) -> int:
    st = s.stats()
    if a.json:
        print(json.dumps(st, sort_keys=True))
        return 0
    from cache.reports import human

    for k, v in st.items():
        print(f"{k}: {v}" + (f" ({human(v)})" if k == "bytes" else ""))
    return 0


_COMMANDS: dict[str, Callable[[Store, argparse.Namespace], int]] = {
    "put": _put, "get": _get, "verify": _verify, "gc": _gc, "stats": _stats,
}


def run(args: argparse.Namespace) -> int:
    """Run one `orch cache …` subcommand; returns the exit code."""
    from cache import BadDigest, Store, StoreError

    root = args.cache_dir or str(default_cache_dir())
    try:
        with Store(root) as s:
            return _COMMANDS[args.cache_command](s, args)
    except BadDigest as e:
        return _err(str(e), ExitCode.BAD_INPUT)
    except StoreError as e:
        return _err(str(e), ExitCode.ENVIRONMENT)
    except OSError as e:
        return _err(f"{root}: {e.strerror or e}", ExitCode.ENVIRONMENT)

