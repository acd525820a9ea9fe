"""Errors jaxviz raises for bad input: each says what was wrong and how to fix it.

All derive from :class:`JaxvizError` (a ``ValueError``), so callers can catch one type and the
command line turns them into a one-line message with exit code 2.
"""


class JaxvizError(ValueError):
    """Base class of every error jaxviz raises for bad input or missing resources."""


class ShapeError(JaxvizError):
    """An array has the wrong rank, shape, dtype or channel count."""


class UnknownLayerError(JaxvizError, KeyError):
    """A layer name the model does not have; the message lists the valid ones."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class TargetError(JaxvizError):
    """A class index out of range or a target batch of the wrong length."""


class HeadlessModelError(JaxvizError):
    """A method that needs class logits was given a feature extractor without a classifier head."""


class TrainingDivergedError(JaxvizError):
    """A loss or a metric became NaN or infinite; the last good checkpoint is kept."""


class WeightsError(JaxvizError):
    """A weight file that is corrupt, truncated, unsafe or does not fit the architecture."""


class CheckpointError(JaxvizError):
    """A checkpoint that belongs to another model or cannot be read."""


class DataFormatError(JaxvizError):
    """A data file that is truncated, corrupt or not in the expected format."""


class DataNotFoundError(JaxvizError, FileNotFoundError):
    """A data set that none of the known sources could provide; the message says how to get it."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class MemoryLimitError(JaxvizError):
    """A computation whose compiled memory estimate exceeds the memory free on its device."""
