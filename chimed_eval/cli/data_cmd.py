"""``chimed-eval data``: download the public releases into --data-dir (checked against the
manifest); say where to put the others."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "data"


def add_parser(sub: argparse._SubParsersAction) -> None:
    """The ``data`` subcommand and its flags."""
    d = sub.add_parser(NAME, help="download the public releases into --data-dir; say where to put the others")
    d.add_argument("--data-dir", type=Path, default=None,
                   help="where the data goes (default: as `run` finds it: $CHIMED_EVAL_DATA, ./data or ../shared/data, else ./data)")
    d.add_argument("--datasets", default=None, help="comma-separated (default: all with a public URL)")
    d.add_argument("--mirror", default=None,
                   help="hf-mirror.com (or hf:URL: the Hugging Face layout under another host), modelscope, or a URL or "
                        "local folder laid out as base/host/path (also $CHIMED_EVAL_DATA_MIRROR; $HF_ENDPOINT serves "
                        "huggingface.co files when no mirror is given)")
    d.add_argument("--check", action="store_true", help="only report what is present, missing or corrupt")
    d.add_argument("--force", action="store_true", help="download again even if present")
    d.add_argument("--deadline", type=_positive_seconds, default=None, metavar="SECONDS",
                   help="the most one download (one URL) may take, whatever the server does (default 600)")
    d.add_argument("--no-progress", action="store_true", help="no progress bar while downloading")


def _positive_seconds(text: str) -> float:
    """``--deadline``: a number of seconds above zero (argparse turns the error into exit 2)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def run(a: argparse.Namespace) -> int:
    """Download (or --check) the data sets into --data-dir."""
    from chimed_eval.data.locations import default_data_dir
    from chimed_eval.data.sets import run_data_command
    from chimed_eval.data.transfer import DEFAULT_DEADLINE

    names = [x.strip() for x in a.datasets.split(",")] if a.datasets else None
    deadline = DEFAULT_DEADLINE if a.deadline is None else a.deadline
    from chimed_eval.core.progress import progress_default

    try:
        data_dir = a.data_dir if a.data_dir is not None else Path(default_data_dir())
        with progress_default(False if a.no_progress else None):  # the download bars
            return run_data_command(data_dir, names, a.mirror, a.check, a.force, deadline=deadline)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the download in progress was removed
        print("\nchimed-eval: interrupted; the files verified so far stay, the partial download was removed.",
              file=sys.stderr)
        return 130
