"""The small error hierarchy the CLI translates into exit codes and one clear sentence.

Foreign exceptions are translated at the boundary (`raise ... from exc`) so a
user never sees a stack trace for bad input or a missing tool.
"""

from __future__ import annotations

EXIT_PASS = 0
EXIT_GATE_FAILED = 1
EXIT_USAGE = 2


class RolescopeError(Exception):
    """A problem with input or environment that the user can fix: exit code 2."""

    exit_code = EXIT_USAGE


class ConfigError(RolescopeError):
    """A user-supplied file or value is invalid; the message names the file, field and value."""


class EnvironmentProblem(RolescopeError):
    """Something rolescope needs is missing here (a binary, a permission, a free port)."""


class GateFailed(RolescopeError):
    """The performance gate judged a run and it failed: exit code 1."""

    exit_code = EXIT_GATE_FAILED
