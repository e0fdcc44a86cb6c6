"""The paper's baselines: kept as an import path; the one table of presets is :mod:`chimed_eval.presets`."""

from .presets import (BASELINES, PAPER_API_DECODING, PAPER_API_SYSTEM_PROMPT, PAPER_OPEN_DECODING,  # noqa: F401
                      PUBLISHED_ROWS, check_backend, render_chat)
