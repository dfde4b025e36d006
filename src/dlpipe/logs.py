"""Logging for workflow steps: one log file per job, and user errors without tracebacks."""

from __future__ import annotations

import contextlib
import errno
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from dlpipe.errors import DlpipeError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
#: Errors of a file system that refuses a write: permissions, read-only, full disk or quota.
_CANNOT_WRITE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT}


def _cannot_write(error: OSError) -> str:
    where = error.filename or "a file"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free space there (or move the results to a larger disk) and rerun"
    else:
        fix = "make its folder writable (or run from a folder you can write) and rerun"
    return f"cannot write {where}: {error.strerror}; {fix}"


@contextlib.contextmanager
def step_logging(log_file: str | Path | None, outputs: list[str] | None = None) -> Iterator[None]:
    """Send logging, warnings, stdout and stderr of a step to ``log_file``.

    A :class:`~dlpipe.errors.DlpipeError` raised inside, or a refused write (permissions,
    read-only or full file system), is written to the log and to the original stderr as one
    line, the partial ``outputs`` are removed, and the process exits with status 1, so the user
    sees the message rather than a traceback.

    Parameters
    ----------
    log_file
        The job's log file; ``None`` logs to stderr only.
    outputs
        Output files of the step, removed when it fails.
    """
    err = sys.stderr
    try:
        handle = open(log_file, "w") if log_file else None
    except OSError as error:
        if error.errno not in _CANNOT_WRITE:
            raise
        err.write(f"dlpipe error: {_cannot_write(error)}\n")
        raise SystemExit(1) from None
    root = logging.getLogger()
    handler = logging.StreamHandler(handle or err)
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    try:
        with contextlib.ExitStack() as stack:
            if handle is not None:
                stack.enter_context(contextlib.redirect_stdout(handle))
                stack.enter_context(contextlib.redirect_stderr(handle))
            yield
    except (DlpipeError, OSError) as error:
        if isinstance(error, OSError) and error.errno not in _CANNOT_WRITE:
            raise
        message = _cannot_write(error) if isinstance(error, OSError) else str(error)
        logging.getLogger("dlpipe").error("%s", message)
        for path in outputs or []:
            with contextlib.suppress(OSError):
                Path(path).unlink(missing_ok=True)
        err.write(f"dlpipe error: {message}\n")
        err.flush()
        raise SystemExit(1) from None
    finally:
        root.removeHandler(handler)
        if handle is not None:
            handle.close()
