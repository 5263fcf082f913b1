"""Where orch keeps things on this machine."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping


def default_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """`$ORCH_CACHE_DIR`, else `$XDG_CACHE_HOME/orch`, else `~/.cache/orch`.

    Empty variables count as unset, and a relative XDG_CACHE_HOME is ignored, as the XDG
    base-directory spec says.
    """
    env = os.environ if env is None else env
    if env.get("ORCH_CACHE_DIR"):
        return Path(env["ORCH_CACHE_DIR"])
    xdg = env.get("XDG_CACHE_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "orch"
    home = env.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".cache" / "orch"
