"""The project's one exception family.

Every error a user can cause (bad parameter, bad file, unknown lattice, ...) is a
``LatticeError`` with a message that says what to change. The UI shows it with
``st.error``; the CLI prints it as one line and exits non-zero. Anything else that
escapes is a bug.
"""
from __future__ import annotations


class LatticeError(Exception):
    """Base class of all errors the user can act on."""


class ValidationError(LatticeError, ValueError):
    """A value is outside what the model allows.

    ``field`` names the offending field (parameter, state array, column) so that a
    form can highlight it; the message repeats it with the allowed range.
    """

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class FitError(LatticeError):
    """A decay fit cannot be made from the data given (too few points, non-finite...)."""
