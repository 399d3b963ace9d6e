"""Errors that reach the user as one clear line (or a list of them), never a traceback."""


class NudgeError(Exception):
    """A user-facing error: bad input or configuration. Nothing was written."""


class InputErrors(NudgeError):
    """Several problems found while validating one input; all are reported at once."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} error(s); nothing was written")
