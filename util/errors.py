"""The one exception type for "the user asked for something wrong".

The drivers (train.py, test.py, translate.py, serve.py, export.py) catch ``UserError`` only:
its message is printed as one line and the program exits non-zero. Every other exception is a
bug and keeps its traceback. It lives in the lowest layer so that any layer can raise it; each
layer's own error types (DataError, CheckpointError, ...) are subclasses.
"""
from __future__ import annotations


class UserError(Exception):
    """Something the user can act on (an option, a file, a folder); the message names it."""


class OptionError(UserError, ValueError):
    """An option's value, or a combination of options, that cannot work. Also a ValueError,
    which is what such a check raised before there was one user-error type."""


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type's name when the message is empty): what
    a one-line error quotes of a library's multi-line message."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
