"""The one exception type for user mistakes.

Anything raised as :class:`MammoError` is reported by the CLI as a single line
``mammo: error: <message>`` with exit status 2 and no traceback.
"""


class MammoError(Exception):
    """A problem with the user's input (data, config, paths), not a bug in mammo."""
