"""User-facing errors: one line naming what is wrong and where, exit status 2."""


class EmuError(Exception):
    """Bad input (scenario, option, placement). Rendered as one line, exit status 2."""

    def __init__(self, message: str, where: str | None = None):
        super().__init__(f"{where}: {message}" if where else message)
