"""The configuration: typed schema (:mod:`.schema`) and the checks run after composition."""

from mammo_cli.config.schema import *  # noqa: F401,F403
