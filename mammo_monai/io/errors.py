"""Errors raised when a mammogram cannot be read or processed."""

from __future__ import annotations

import os


class MammogramError(ValueError):
    """A file that cannot be turned into a mammogram tensor.

    The message always names the file and the problem, so that batch commands can report it as one
    row and carry on.

    Args:
        path: the offending file.
        problem: what is wrong with it, in words a user can act on.
    """

    def __init__(self, path: str | os.PathLike | None, problem: str):
        self.path = str(path) if path is not None else "<in-memory image>"
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class WriteError(OSError):
    """An output that could not be written: names the output (never its temporary) and the reason.

    ``str()`` reads "cannot write /out/x.png: no space left on device"; ``errno`` is kept, so a caller
    can tell a full disk (``errno.ENOSPC``) from a bad item.
    """

    def __str__(self) -> str:
        reason = str(self.strerror or "error")
        return f"cannot write {self.filename}: {reason[:1].lower()}{reason[1:]}"


def describe_error(err: BaseException, path: str | os.PathLike | None = None) -> str:
    """One-line message for ``err``, unwrapping MONAI's "applying transform ..." RuntimeError.

    MONAI's ``Compose`` re-raises a transform's exception wrapped in a RuntimeError; the message a
    user needs is the original one (a :class:`MammogramError` names the file and the problem, a
    :class:`WriteError` the output that could not be written).
    """
    seen, cur = set(), err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, MammogramError):
            return str(cur)
        if isinstance(cur, WriteError):
            return str(cur) if path is None else f"{path}: {cur}"
        cur = cur.__cause__ or cur.__context__
    root = err
    while root.__cause__ is not None:
        root = root.__cause__
    text = f"{type(root).__name__}: {root}"
    return text if path is None or str(path) in text else f"{path}: {text}"
