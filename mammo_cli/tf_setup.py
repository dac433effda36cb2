"""Importing TensorFlow without its start-up chatter; its thread counts per process.

TensorFlow prints several C++ log lines to stderr while it is imported, before its
logging can be configured (``TF_CPP_MIN_LOG_LEVEL`` does not reach them). They are
swallowed here; if the import fails, they are replayed so nothing useful is lost.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile

from mammo_cli.errors import MammoError


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


def set_thread_counts(threads: int | None) -> None:
    """Give TensorFlow ``threads`` intra-op and inter-op threads (None: leave its default).

    Must run before TensorFlow executes its first op; a process that already runs with
    another count (e.g. a sequential sweep over ``trainer.threads``) is refused.
    """
    if threads is None:
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError as exc:
        raise MammoError(
            f"trainer.threads={threads} cannot be applied: TensorFlow already started in "
            "this process with other thread counts (one trainer.threads value per process)"
        ) from exc
    logging.getLogger(__name__).info(
        "TensorFlow threads: intra-op %d, inter-op %d", threads, threads
    )


def distribution_strategy(device_type: str = "GPU"):
    """``tf.distribute.MirroredStrategy`` over every visible device of ``device_type``
    (GPUs: what training uses) when there are several; otherwise the strategy in effect
    (the default one: the single GPU, or the CPU).

    Models built and trained inside its ``scope()`` keep one replica per device; each
    batch of ``trainer.batch_size`` is split between them. (The tests pass ``"CPU"`` on
    two logical CPU devices to run this path without GPUs.)
    """
    import tensorflow as tf

    devices = tf.config.list_logical_devices(device_type)
    if len(devices) > 1 and not tf.distribute.has_strategy():
        logging.getLogger(__name__).info(
            "training on %d %s devices (MirroredStrategy)", len(devices), device_type
        )
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    return tf.distribute.get_strategy()
