"""Keeping TensorFlow's native start-up and conversion chatter out of user-facing output."""

from __future__ import annotations

import contextlib
import logging
import os


@contextlib.contextmanager
def quiet_native_output(stdout: bool = False):
    """Sends file descriptor 2 (and 1 if `stdout`) to /dev/null and TensorFlow's Python
    logger to ERROR for the duration.

    TensorFlow's C++ runtime logs CUDA probing, CPU features, converter statistics and
    "assets written" notes straight to the file descriptors, ignoring
    TF_CPP_MIN_LOG_LEVEL. Exceptions still carry their messages.
    """
    fds = (1, 2) if stdout else (2,)
    devnull = os.open(os.devnull, os.O_WRONLY)
    saved = {fd: os.dup(fd) for fd in fds}
    logger = logging.getLogger("tensorflow")
    level = logger.level
    try:
        for fd in fds:
            os.dup2(devnull, fd)
        logger.setLevel(logging.ERROR)
        yield
    finally:
        logger.setLevel(level)
        for fd, copy in saved.items():
            os.dup2(copy, fd)
            os.close(copy)
        os.close(devnull)


def import_tensorflow_quietly() -> None:
    """Imports TensorFlow and sets up its devices without the native log lines."""
    with quiet_native_output():
        import tensorflow as tf

        tf.config.list_physical_devices()
