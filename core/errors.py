"""One exception family for everything a user can get wrong or the machine cannot do.

Each message says what was expected, what was given and what is available, so the
CLI can print it as one line and the app can show it as one message.

The engine speaks in domain words ("INT8 needs calibration images"); when the remedy is a setting, the error
names it as a :class:`Setting` and each shell says it in its own words: the CLI adds its flag
(``core.cli``: "pass --calib DIR"), a page the widget to use (``ui.widgets.error_text``).
"""

from __future__ import annotations

from enum import StrEnum


class Setting(StrEnum):
    """A setting that would remedy an error; the CLI and the pages each know what they call it."""

    CALIBRATION = "calibration images"
    TRUST = "trust the model file"
    CLUSTER = "cluster address"
    IMGSZ = "image size"
    SHAPE = "input shape"
    MODELS_DIR = "models directory"
    INT8_FLAVOUR = "INT8 flavour"
    TARGET = "explorer target"


class CoreError(Exception):
    """Base class: an error whose message is meant for the user, not a traceback.

    ``setting``: the setting that would remedy it, for the shell to name (None: nothing to set)."""

    def __init__(self, *args: object, setting: Setting | None = None) -> None:
        super().__init__(*args)
        self.setting = setting


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
