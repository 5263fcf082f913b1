"""SVG from DOT through Graphviz's `dot`, when it is installed (an optional tool)."""
from __future__ import annotations

import shutil
import subprocess

from orchestrator.errors import EnvironmentProblem, Reason


def to_svg(dot: str, path: str) -> None:
    exe = shutil.which("dot")
    if exe is None:
        raise EnvironmentProblem("Graphviz is not installed", reason=Reason.MISSING_FILE,
                                 hint="apt-get install graphviz, or write .dot instead")
    proc = subprocess.run([exe, "-Tsvg", "-o", path], input=dot.encode(), capture_output=True,
                          check=False)
    if proc.returncode != 0:
        raise EnvironmentProblem(f"dot failed: {proc.stderr.decode(errors='replace').strip()[-200:]}",
                                 reason=Reason.MISSING_FILE)
