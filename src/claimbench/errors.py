"""User-facing errors: each carries one message naming what is wrong and how to fix it."""

import argparse


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


class OneLineArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one ClaimbenchError line ('<name>: <problem> (see --help)'), which the
    command prints and exits 2 on, instead of argparse's usage block and exit 2 of its own. name: the command."""

    def __init__(self, *args, name: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.name = name

    def error(self, message: str):
        raise ClaimbenchError(f"{self.name}: {message} (see --help)")
