"""Error types shared by every layer.

`InputError` is bad input from a user (a file, a request, a setting): the CLI prints its message on
one line and exits non-zero; the REST layer turns it into a 4xx; the sensor writes it beside the
rejected file. Its message always names the problem (field or file, value, limit).
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input from a user. The message is one line that names the field or file and the limit."""


class ModelUnavailableError(RuntimeError):
    """A model could not be loaded (unreachable hub id, missing folder). Names the offline options."""
