"""Logging for workflow steps: one log file per job, and user errors without tracebacks."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from dlpipe.errors import DlpipeError

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def step_logging(log_file: str | Path | None, outputs: list[str] | None = None) -> Iterator[None]:
    """Send logging, warnings, stdout and stderr of a step to ``log_file``.

    A :class:`~dlpipe.errors.DlpipeError` raised inside is written to the log and to the
    original stderr as one line, the partial ``outputs`` are removed, and the process exits
    with status 1, so the user sees the message rather than a traceback.

    Parameters
    ----------
    log_file
        The job's log file; ``None`` logs to stderr only.
    outputs
        Output files of the step, removed when it fails.
    """
    err = sys.stderr
    handle = open(log_file, "w") if log_file else None
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
    except DlpipeError as error:
        logging.getLogger("dlpipe").error("%s", error)
        for path in outputs or []:
            Path(path).unlink(missing_ok=True)
        err.write(f"dlpipe error: {error}\n")
        err.flush()
        raise SystemExit(1) from None
    finally:
        root.removeHandler(handler)
        if handle is not None:
            handle.close()
