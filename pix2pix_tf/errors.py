"""The one exception type the CLI turns into a readable one-line error."""


class Pix2PixError(Exception):
    """A user-facing error: bad input, bad flags, a missing work dir.

    The message names the file or option and says what was expected and what was
    found; the CLI prints it without a traceback and exits non-zero.
    """


class DataError(Pix2PixError):
    """A dataset problem found before training starts."""
