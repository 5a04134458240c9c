"""The one exception the command line turns into a one-line message and an exit code."""


class CliError(Exception):
    """A one-line message for the user; ``code`` is the exit code (2: the input cannot be used)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code
