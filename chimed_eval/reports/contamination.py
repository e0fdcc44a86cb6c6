"""The "Contamination" section of the HTML report: shown when OUT has ``results.clean.json``
(written by ``chimed-eval score OUT --exclude-contaminated REPORT``). Per task: the items
excluded, the items too short to check, the items whose only match lies inside an option (kept:
not counted as contaminated), the report's contamination rate (Wilson 95% interval),
and the headline figure on every item beside the same figure on the unflagged items. A task whose
records changed since (their sha256 differs) is marked stale."""

from __future__ import annotations

from pathlib import Path


def contamination_html(run_dir: Path) -> list[str]:
    """HTML lines of the section; [] when the run has no results.clean.json."""
    path = Path(run_dir) / "results.clean.json"
    if not path.is_file():
        return []
    from chimed_eval.reports.sections import _e, _n, headline
    from chimed_eval.runs.reader import metric_from_dict, read_run, samples_file
    from chimed_eval.core.types import file_sha256


    clean = read_run(path, check_records=False)  # figures against their digest; stale records are marked below
    block = clean.settings.get("contamination") or {}
    tasks = block.get("tasks") or {}
    by_task = {t.task: t for t in clean.tasks}
    out = ["<h2 id='contamination'>Contamination</h2>",
           f"<p class='muted'>Items flagged by {_e(block.get('report'))} (n = {_e(block.get('n'))}, tokenisation "
           f"{_e(block.get('tokenisation'))}"
           + (f", n-grams in more than {_e(block['max_documents'])} corpus documents ignored" if block.get("max_documents") else "")
           + f") are left out of the clean figures ({_e(path.name)}); results.json keeps every item.</p>",
           "<table id='contamination-table'><tr><th>task</th><th>excluded</th><th>too short to check</th>"
           "<th>option-only matches (kept)</th><th>contamination rate</th><th>metric</th><th>all items</th><th>clean items</th><th>difference</th></tr>"]
    for name, b in tasks.items():
        full = [metric_from_dict(m, path, f"task {name!r}: full metric ") for m in b.get("full_metrics") or []]
        h = headline(full)
        c = by_task.get(name)
        cm = next((m for m in (c.metrics if c is not None else ()) if h is not None and m.name == h.name), None)
        rate, ci = b.get("report_rate"), b.get("report_rate_ci95")
        rate_s = "-" if rate is None else f"{100 * rate:.1f}%" + (f" [{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]" if ci else "")
        diff = _n(cm.value - h.value) if cm is not None and h is not None else "-"
        rec = samples_file(run_dir, name)
        stale = rec.is_file() and file_sha256(rec) != b.get("records_sha256")
        out.append(f"<tr><td>{_e(name)}</td><td class='num'>{_e(b.get('excluded_items'))} / {_e(b.get('items'))}</td>"
                   f"<td class='num'>{_e(b.get('too_short_items'))}</td>"
                   f"<td class='num option-only'>{_e(b.get('option_only_items', '-'))}</td><td class='num'>{_e(rate_s)}</td>"
                   f"<td>{_e(h.name if h else '-')}</td><td class='num'>{_n(h.value) if h else '-'}</td>"
                   f"<td class='num clean-figure' data-task='{_e(name)}'>{_n(cm.value) if cm else '-'}</td>"
                   f"<td class='num'>{diff}</td></tr>"
                   + ("<tr><td colspan='9' class='muted'>the records changed since: run score --exclude-contaminated "
                      "again</td></tr>" if stale else ""))
    out.append("</table>")
    return out
