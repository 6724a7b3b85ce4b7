"""The one exception type the package raises for bad input.

Its message is a single line meant for the reader; the command line prints it
without a traceback. It is a ``ValueError``, so the usual
``except ValueError`` for bad arguments catches it too.
"""


class VitTutorialError(ValueError):
    """Bad input: a missing or corrupt checkpoint, a wrong image, unknown data."""
