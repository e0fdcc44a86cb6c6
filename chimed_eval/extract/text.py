"""Text normalization shared by every reader of answers.

Pure functions: no model, no data. Option letters of exam generations (``generate`` and ``cot``)
are read by one reader, :func:`chimed_eval.extract.letters.extract_final_answer`; a failed
extraction is counted by the task, never silently dropped.
"""

from __future__ import annotations

import unicodedata


def normalize(text: str) -> str:
    """NFKC: full-width letters, colons, commas and brackets (Ａ, ：, ，, （) become ASCII, so the
    reader of answers (``chimed_eval.extract.letters``) matches one alphabet."""
    return unicodedata.normalize("NFKC", text)
