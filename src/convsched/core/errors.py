"""convsched's errors: one base the CLI turns into a one-line error (exit status 2), and the specific
kinds a caller may need to tell apart."""

from __future__ import annotations


class ConvschedError(ValueError):
    """Bad input: the message says what is wrong and how to fix it, on one line."""


class NoFeasibleSchedule(ConvschedError):
    """No schedule of a layer fits the buffer capacity.

    `smallest_capacity` is the least capacity (in bytes, as the architecture counts it: doubled when
    double-buffered) at which some schedule of the searched space fits; `layer` is the layer.
    """

    def __init__(self, message: str, layer: object = None, smallest_capacity: int | None = None) -> None:
        super().__init__(message)
        self.layer = layer
        self.smallest_capacity = smallest_capacity

    def __reduce__(self):          # keeps the fields across worker processes (pickling)
        return (type(self), (str(self), self.layer, self.smallest_capacity))
