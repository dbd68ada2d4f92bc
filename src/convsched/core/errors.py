"""The one exception type the CLI turns into a one-line error (exit status 2)."""


class ConvschedError(ValueError):
    """Bad input: the message says what is wrong and how to fix it, on one line."""
