"""The one exception type the CLI turns into a readable one-line error."""

import errno
import re


class Pix2PixError(Exception):
    """A user-facing error: bad input, bad flags, a missing work dir.

    The message names the file or option and says what was expected and what was
    found; the CLI prints it without a traceback and exits non-zero.
    """


class DataError(Pix2PixError):
    """A dataset problem found before training starts."""


def is_disk_full(error: BaseException) -> bool:
    """True for "no space left on device", whether Python or TensorFlow raised it (see `disk_full_cause`)."""
    return disk_full_cause(error) is not None


def disk_full_cause(error: BaseException) -> BaseException | None:
    """The "no space left on device" error that `error` is or was raised from or while handling, if any.

    A library that wraps the OS error, or a clean-up that fails after it, still
    failed for want of space.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno == errno.ENOSPC:
            return error
        # TensorFlow's file writers report ENOSPC as an OpError (ResourceExhausted or Unknown)
        # whose message carries the OS text.
        if type(error).__module__.startswith("tensorflow") and "no space left on device" in str(error).lower():
            return error
        error = error.__cause__ or error.__context__
    return None


def short_message(error: BaseException, limit: int = 300) -> str:
    """The first line of an error's message, without TensorFlow's op-name wrapping."""
    if isinstance(error, OSError) and error.strerror:  # "Permission denied", not "[Errno 13] Permission denied: ..."
        return error.strerror[:limit]
    message = re.sub(r"\{\{.*?\}\}|\[Op:.*", "", getattr(error, "message", None) or str(error)).strip()
    return (message.splitlines() or [type(error).__name__])[0][:limit]
