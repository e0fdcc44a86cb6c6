"""MkDocs hook: the reference pages, generated from the code at every build (never kept in git).

``reference/cli.md`` walks :func:`chimed_eval.cli.app.build_parser` (every command, every flag);
``reference/api.md`` hands the public API to mkdocstrings (docstrings); ``reference/schema.md``
renders ``chimed_eval/schema/results.schema.json``; ``reference/tasks.md`` lists the task registry
with the item count of each task on the data found (``$CHIMED_EVAL_DATA`` and the usual places);
``reference/metrics.md`` lists every metric name a metric module declares, its direction, and the
module's own definition text and source file. Headings follow the site's language (en, zh).
Why a hook: a page written by hand drifts from the parser and the registry; these cannot.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for _p in (HERE.parents[1], HERE):  # the checkout (chimed_eval) and this folder (refgen)
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

import refgen  # noqa: E402  (after the path is set)

from mkdocs.plugins import event_priority  # noqa: E402
from mkdocs.structure.files import File, Files  # noqa: E402


@event_priority(100)  # before awesome-nav reads the files
def on_files(files: Files, config) -> Files:  # type: ignore[no-untyped-def]
    """Add the generated reference pages (replacing none: a hand-written one is an error)."""
    lang = "zh" if str(config.theme.get("language", "en")).startswith("zh") else "en"
    for name, text in refgen.pages(lang).items():
        uri = f"reference/{name}"
        if files.get_file_from_path(uri) is not None:
            raise ValueError(f"docs/{lang}/{uri} is generated at build time: remove the hand-written file")
        files.append(File.generated(config, uri, content=text))
    return files
