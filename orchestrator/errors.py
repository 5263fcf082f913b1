"""Errors that reach a person: one line, a machine-readable reason, a documented exit code.

Like BuildStream's `BstError`, every error carries a `reason`; like Meson's, it names
the file (and line where known). The CLI prints `str(err)` and exits with `err.exit_code`.
"""
from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    BUILD_FAILED = 1
    BAD_INPUT = 2
    ENVIRONMENT = 3
    INTERRUPTED = 130


class Reason(enum.Enum):
    MISSING_FILE = "missing-file"
    INVALID_YAML = "invalid-yaml"
    INVALID_SPEC = "invalid-spec"
    TEMPLATE_ERROR = "template-error"
    UNDEFINED_VALUE = "undefined-value"
    UNKNOWN_DEPENDENCY = "unknown-dependency"
    UNSATISFIABLE = "unsatisfiable"
    CIRCULAR_DEPENDENCY = "circular-dependency"
    DUPLICATE_PACKAGE = "duplicate-package"
    USAGE = "usage"
    BUILD_FAILED = "build-failed"
    BUILDAH_FAILED = "buildah-failed"
    BUILDAH_UNAVAILABLE = "buildah-unavailable"
    STORE_ERROR = "store-error"
    HOSTILE_ARCHIVE = "hostile-archive"
    INTERRUPTED = "interrupted"
    WORKER_DIED = "worker-died"


class OrchError(Exception):
    """Base of every error meant for a person (never shown with a traceback)."""

    exit_code: ExitCode = ExitCode.BAD_INPUT

    def __init__(
        self,
        message: str,
        *,
        reason: Reason,
        file: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.reason = reason
        self.file = file
        self.line = line
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        text = f"{where}{self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text.replace("\n", " ")


class SpecError(OrchError):
    """Bad YAML, bad template, undefined value, bad field: the user's spec is wrong (exit 2)."""


class GraphError(OrchError):
    """Missing/unsatisfiable dependency or cycle (exit 2)."""


class UsageError(OrchError):
    """Bad command line (exit 2)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, reason=Reason.USAGE, hint=hint)


class EnvironmentProblem(OrchError):
    """The machine lacks something (buildah, permissions, disk): exit 3."""

    exit_code = ExitCode.ENVIRONMENT


class BuildError(OrchError):
    """A package's build failed (exit 1)."""

    exit_code = ExitCode.BUILD_FAILED


class Interrupted(OrchError):
    exit_code = ExitCode.INTERRUPTED

    def __init__(self, message: str = "interrupted") -> None:
        super().__init__(message, reason=Reason.INTERRUPTED)
