"""convsched's errors: one base the CLI turns into a one-line error (exit status 2), and the specific
kinds a caller may need to tell apart."""

from __future__ import annotations


class ConvschedError(ValueError):
    """Bad input: the message says what is wrong and how to fix it, on one line.

    >>> from convsched import ConvschedError, Layer
    >>> try:
    ...     Layer(K=8, C=4, OY=6, OX=6, FY=2.0)
    ... except ConvschedError as e:
    ...     print(e)
    layer field FY=2.0 is not an integer but a floating-point number; dimensions are integers as written: write 2
    """


class NoFeasibleSchedule(ConvschedError):
    """No schedule of a layer fits the buffer capacity.

    `smallest_capacity` is the least capacity (in bytes, as the architecture counts it: doubled when
    double-buffered) at which some schedule of the searched space fits; `layer` is the layer.

    >>> from convsched import Architecture, Layer, optimize_layer
    >>> layer = Layer(K=16, C=8, OY=8, OX=8, FY=3, FX=3, PY=1, PX=1)
    >>> try:
    ...     optimize_layer(layer, Architecture(capacity=4))
    ... except NoFeasibleSchedule as e:
    ...     (e.smallest_capacity, isinstance(e, ConvschedError))
    (6, True)
    """

    def __init__(self, message: str, layer: object = None, smallest_capacity: int | None = None) -> None:
        super().__init__(message)
        self.layer = layer
        self.smallest_capacity = smallest_capacity

    def __reduce__(self):          # keeps the fields across worker processes (pickling)
        return (type(self), (str(self), self.layer, self.smallest_capacity))
