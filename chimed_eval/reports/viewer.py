"""``chimed-eval view RUN...``: one self-contained HTML page comparing runs (and ``--serve`` to show
it on 127.0.0.1).

The page holds its data (inline JSON, ``<`` escaped: :func:`~chimed_eval.reports.sections.inline_json`),
its script and Chart.js (vendored, MIT, :mod:`chimed_eval.reports.assets`), so it opens offline
and can be mailed as one file. Python computes every figure; the script only draws and filters:

* per task, each run's headline figure with its 95% interval, and per subject the same (bars);
* paired differences of each run against the first that recorded the task (the first run, for
  the tasks it has), on the items both recorded, with the
  significance :func:`chimed_eval.reports.html.compare_task` gives (McNemar's exact test for
  right/wrong scores, else the paired bootstrap) and the paired bootstrap's 95% interval of the
  mean difference (:func:`chimed_eval.reports.html.paired_bootstrap`), in points;
* reliability diagram, position bias and letter shares, extraction rules, judge agreement
  (:mod:`chimed_eval.reports.charts`);
* an item browser: per item the prompt, gold, and per run the raw output, extracted answer and
  rule, score and judge verdicts side by side; sortable by any column, filtered by text, task,
  "wrong in some run" and "runs disagree".

Everything from a run reaches the page as JSON data and is put in the DOM as text
(``textContent``), never as markup.
"""

from __future__ import annotations

import http.server
import json
import socketserver
import sys
from pathlib import Path
from typing import Any, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.reports.charts import headline_of, judge_summary, judge_verdicts, task_charts
from chimed_eval.reports.html import compare_task, load_samples, output_of, paired_bootstrap, run_dir
from chimed_eval.reports.sections import ERROR_TRAP, FONT_STACK, _e, asset, extracted_value, finite, inline_json
from chimed_eval.runs.reader import read_run_if_any, sample_tasks
from chimed_eval.runs.records import write_text_atomic

TEXT_CHARS = 2000  # the end of a prompt, the start of an output, kept on the page
MAX_ITEMS = 5000  # items per task in the browser (the figures always count every item)


def _tail(text: str | None, n: int = TEXT_CHARS) -> str | None:
    """The end of a prompt (where the question is)."""
    return text if text is None or len(text) <= n else "…" + text[-n:]


def _head(text: str | None, n: int = TEXT_CHARS) -> str | None:
    """The start of an output (where the answer is)."""
    return text if text is None or len(text) <= n else text[:n] + "…"


def _labels(dirs: Sequence[Path], names: Sequence[str]) -> list[str]:
    """Each run's label: its model's name, with the directory where two runs share a name."""
    out = []
    for d, name in zip(dirs, names):
        same = sum(1 for x in names if x == name) > 1
        out.append(f"{name} ({d.name})" if same else name)
    return out


def view_data(paths: Sequence[Path], seed: int = 1234, max_items: int = MAX_ITEMS) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready data (see the module docstring)."""
    if not paths:
        raise ConfigError("view needs at least one run (an output directory or its results.json)")
    dirs = [run_dir(p) for p in paths]
    results = [read_run_if_any(d) for d in dirs]  # figures verified against their records
    labels = _labels(dirs, [r.model.name if r is not None else d.name for d, r in zip(dirs, results)])
    runs = [{"label": lab, "dir": str(d), "model": r.model.name if r else None,
             "integrity": r.integrity if r else "no results.json", "seed": (r.settings.get("seed") if r else None)}
            for lab, d, r in zip(labels, dirs, results)]
    tasks = list(dict.fromkeys(t for d in dirs for t in sample_tasks(d)))
    recs = {(i, t): load_samples(d, t) for i, d in enumerate(dirs) for t in tasks if t in sample_tasks(d)}
    verdicts = [judge_verdicts(d) for d in dirs]
    out_tasks, paired, items = [], [], []
    for t in tasks:
        entry: dict[str, Any] = {"task": t, "runs": []}
        for i, r in enumerate(results):
            tr = next((x for x in r.tasks if x.task == t), None) if r is not None else None
            rs = list(recs.get((i, t), {}).values())
            charts = task_charts(rs, tr.metrics if tr else (), seed, tr.subjects if tr else None) if rs or tr else None
            entry["runs"].append(None if charts is None else {
                "headline": headline_of(tr.metrics) if tr else None, "n": tr.n if tr else len(rs), **charts})
        out_tasks.append(entry)
        have = [i for i in range(len(dirs)) if recs.get((i, t))]  # the first run holding the task is its reference
        for i in have[1:]:
            base, other = recs[(have[0], t)], recs[(i, t)]
            if any(k in other for k in base):  # no shared item: nothing to pair
                paired.append(_paired(t, have[0], i, base, other, seed))
        per_run = [recs.get((i, t), {}) for i in range(len(dirs))]
        entry["items_total"] = len({k for r in per_run for k in r})  # the browser notes when it holds fewer
        items.extend(_items(t, per_run, verdicts, max_items))
    return finite({"runs": runs, "tasks": out_tasks, "paired": paired, "items": items,
                   "judges": [judge_summary(d) for d in dirs], "max_items": max_items})


def _paired(task: str, a: int, b: int, ra: dict, rb: dict, seed: int) -> dict[str, Any]:
    """Run ``b`` against run ``a`` on the items both recorded: the test and p-value of
    :func:`compare_task`, the paired bootstrap's mean difference and 95% interval (points)."""
    c = compare_task(task, ra, rb, seed)
    common = [i for i in ra if i in rb]
    mean, lo, hi, p_boot = paired_bootstrap([float(ra[i].score) for i in common],
                                            [float(rb[i].score) for i in common], seed)
    return {"task": task, "a": a, "b": b, "n_common": c.n_common, "only_a": len(c.only_a), "only_b": len(c.only_b),
            "mean_a": 100 * c.mean_a, "mean_b": 100 * c.mean_b, "diff": 100 * mean, "ci_low": 100 * lo,
            "ci_high": 100 * hi, "test": c.test, "p": c.p_value, "p_bootstrap": p_boot, "changed": len(c.changed)}


def _items(task: str, per_run: Sequence[dict], verdicts: Sequence[dict], max_items: int) -> list[dict[str, Any]]:
    """The item browser's rows of one task: one per item id (in the first run's order), with each
    run's answer side by side (None where a run did not record the item)."""
    ids = list(dict.fromkeys(i for recs in per_run for i in recs))[:max_items]
    rows = []
    for item_id in ids:
        first = next(recs[item_id] for recs in per_run if item_id in recs)
        cells = []
        for k, recs in enumerate(per_run):
            r = recs.get(item_id)
            cells.append(None if r is None else {
                "score": None if r.score is None else float(r.score), "output": _head(output_of(r)),
                "extracted": extracted_value(r), "rule": r.extra.get("extraction_rule"),
                "failed": bool(r.extraction_failed), "same_prompt": r.prompt_hash == first.prompt_hash,
                "verdicts": verdicts[k].get(task, {}).get(str(item_id), [])})
        gold = first.gold if isinstance(first.gold, str) else json.dumps(first.gold, ensure_ascii=False)
        rows.append({"task": task, "id": str(item_id), "subject": first.subject, "gold": gold,
                     "prompt": _tail(str(first.prompt)), "runs": cells})
    return rows


def render_view(paths: Sequence[Path], seed: int = 1234, max_items: int = MAX_ITEMS) -> str:
    """The page (see the module docstring)."""
    data = view_data(paths, seed, max_items)
    title = "chimed-eval: " + " vs ".join(r["label"] for r in data["runs"])
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="zh-CN"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">', f"<title>{_e(title)}</title>",
        f"<style>:root{{--font:{FONT_STACK}}}\n{asset('viewer.css')}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        "<noscript><p>This page draws its charts and item browser with JavaScript.</p></noscript>",
        "<div id='app'></div>",
        f"<script id='viewer-data' type='application/json'>{inline_json(data)}</script>",
        f"<script>{asset('chart.umd.min.js')}</script>",
        f"<script>{asset('charts.js')}</script>",
        f"<script>{asset('viewer.js')}</script>",
        "</body></html>"]) + "\n"


def write_view(paths: Sequence[Path], output: Path, seed: int = 1234, max_items: int = MAX_ITEMS) -> Path:
    """Write the page to ``output`` (through a temporary file, so an interrupted write never
    leaves half a page under the real name)."""
    output = Path(output)
    write_text_atomic(output, render_view(paths, seed, max_items))
    return output


def make_server(page: Path, port: int = 8765, host: str = "127.0.0.1") -> socketserver.TCPServer:
    """A server of ``page`` (and nothing else: any other path is a 404) bound to ``host:port``.
    Only loopback addresses are accepted: the page holds prompts and outputs, which should not
    leave the machine."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ConfigError(f"--serve binds 127.0.0.1 only, not {host!r}")
    body = Path(page).read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the http.server name
            if self.path.split("?", 1)[0] not in ("/", "/index.html"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:  # quiet: one line per request is noise here
            pass

    class Server(socketserver.TCPServer):
        allow_reuse_address = True

    try:
        return Server((host, port), Handler)
    except OSError as exc:
        raise ConfigError(f"cannot serve on {host}:{port}: {exc.strerror or exc} (try --port 0)") from None


def serve(page: Path, port: int = 8765, host: str = "127.0.0.1") -> None:
    """Serve ``page`` on ``host:port`` (:func:`make_server`) until Ctrl-C."""
    with make_server(page, port, host) as server:
        print(f"serving {page} at http://{host}:{server.server_address[1]}/ (Ctrl-C stops)", file=sys.stderr, flush=True)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped", file=sys.stderr)
