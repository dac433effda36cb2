"""Importing TensorFlow without its start-up chatter.

TensorFlow prints several C++ log lines to stderr while it is imported, before its
logging can be configured (``TF_CPP_MIN_LOG_LEVEL`` does not reach them). They are
swallowed here; if the import fails, they are replayed so nothing useful is lost.
"""

from __future__ import annotations

import os
import sys
import tempfile


def import_tensorflow_quietly() -> None:
    """Import TensorFlow once with file descriptor 2 redirected to a scratch file."""
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        except BaseException:
            os.dup2(saved, 2)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
