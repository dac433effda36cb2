"""The one exception type for user mistakes.

Anything raised as :class:`MammoError` is reported by the CLI as a single line
``mammo: error: <message>`` with exit status 2 and no traceback.
"""


class MammoError(Exception):
    """A problem with the user's input (data, config, paths), not a bug in mammo."""


class PartialFailure(MammoError):
    """A run that wrote its results but failed in part (e.g. a holdout split): ``result``
    is what it wrote, so its tables can still be shown and read."""

    def __init__(self, message: str, result: object):
        super().__init__(message)
        self.result = result
