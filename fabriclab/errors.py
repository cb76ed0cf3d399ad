"""Errors that reach the user as one clear line and an exit code, never a traceback."""


class UserError(Exception):
    """Bad input or an impossible request: printed as one line, exit code ``exit_code``."""

    exit_code = 2

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class InternalError(Exception):
    """A bug of fabriclab's, not of the input: one line ``fabriclab: internal error: ...``
    (with the P4 source location when one is known), exit code 3."""

    exit_code = 3
