"""One exception family for everything a user can get wrong or the machine cannot do.

Each message says what was expected, what was given and what is available, so the
CLI can print it as one line and the app can show it as one message.
"""

from __future__ import annotations


class CoreError(Exception):
    """Base class: an error whose message is meant for the user, not a traceback."""


class InputError(CoreError):
    """A file, folder or value the user gave is not usable (bad image, bad dataset, bad option)."""


class ModelError(CoreError):
    """A model file cannot be used: unknown format, unsafe pickle, not a detector, failed download."""


class UnsafeModelError(ModelError):
    """A model file would need code execution (an unpickle of arbitrary classes) to be loaded."""


class RuntimeUnavailableError(CoreError):
    """A runtime/precision cannot run on this machine; the message says why."""


class ConversionError(CoreError):
    """A conversion step (export, FP16, INT8, engine build) failed."""
