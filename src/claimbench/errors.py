"""User-facing errors: each carries one message naming what is wrong and how to fix it."""


class ClaimbenchError(Exception):
    """Base of all errors that stage entries print as one line and exit 2 on."""


class ParamsError(ClaimbenchError, ValueError):
    """A params.yaml key or value is wrong."""


class DataError(ClaimbenchError, FileNotFoundError):
    """A dataset is missing or malformed."""


class CacheError(ClaimbenchError):
    """A cached artifact (checkpoint, run record, result) is corrupt or inconsistent."""


class CardError(ClaimbenchError, ValueError):
    """A claim card is malformed, or a result does not match its card."""


class TrainingDiverged(ClaimbenchError, FloatingPointError):
    """A training loss became NaN or infinite."""


class StorageError(ClaimbenchError, OSError):
    """A generated file could not be written: disk full, or a read-only or forbidden folder."""

    def __str__(self) -> str:  # OSError's str would show (errno, strerror); ours is the one line
        return str(self.args[0]) if self.args else ""
