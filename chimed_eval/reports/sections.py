"""Sections of the HTML pages (the report, :mod:`chimed_eval.reports.html`; the viewer,
:mod:`chimed_eval.reports.viewer`): the inputs of calibration and the table of answer-extraction
rules, with the HTML escaping, inline JSON, font stack and embedded assets the pages share. Imported from :mod:`chimed_eval.reports.html` too."""

from __future__ import annotations

import html
import json
import math
import re
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Sequence

from chimed_eval.core.types import Metric, SampleScore

__all__ = ["RULE_PREFIX", "RULE_SUFFIX", "calibration_inputs", "extracted_text", "extraction_rules",
           "extraction_rules_html", "extracted_value"]


#: control characters (C0 but tab, newline and carriage return; DEL; C1): a NUL from a model's output
#: is not valid HTML text, so each is shown as a visible ``\xNN`` escape instead
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: what a report section may raise on a file it reads that is truncated, malformed or unreadable
SECTION_ERRORS = (OSError, ValueError, KeyError, TypeError, AttributeError, IndexError)


#: CJK-capable fonts after the system UI font, so that Chinese prompts and outputs never render
#: as empty boxes (the CI browser test installs fonts-noto-cjk)
FONT_STACK = ("system-ui, -apple-system, 'Segoe UI', 'Noto Sans CJK SC', 'Noto Sans SC', 'Source Han Sans SC', "
              "'PingFang SC', 'Hiragino Sans GB', 'Microsoft YaHei', 'WenQuanYi Micro Hei', 'WenQuanYi Zen Hei', "
              "'Noto Sans', Arial, sans-serif")
#: the first script of a page: every uncaught error and console.error is kept in window.__errors,
#: which the page's self-test (``#selftest``) writes into the DOM for the headless browser test
ERROR_TRAP = ("window.__errors=[];window.addEventListener('error',function(e){window.__errors.push(String(e.message))});"
              "(function(){var f=console.error;console.error=function(){window.__errors.push("
              "Array.prototype.join.call(arguments,' '));return f.apply(console,arguments)}})();")
def asset(name: str) -> str:
    """The text of a file of :mod:`chimed_eval.reports.assets` (the vendored Chart.js, the page's
    script and style)."""
    return resources.files("chimed_eval.reports.assets").joinpath(name).read_text(encoding="utf-8")


def _e(x: Any) -> str:
    r"""HTML-escaped text, control characters shown as ``\xNN``."""
    text = html.escape("" if x is None else str(x), quote=True)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def inline_json(obj: Any) -> str:
    r"""JSON safe inside a ``<script>`` element: ``<``, ``>`` and ``&`` as ``\u003c``, ``\u003e``,
    ``\u0026`` (a ``<!--`` or ``</script`` in a task name would otherwise end or hide the script);
    ``json.loads`` of the text gives ``obj`` back."""
    text = json.dumps(obj, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def finite(obj: Any) -> Any:
    """``obj`` with every NaN or infinite number as None: JSON has no NaN, and the page's
    ``JSON.parse`` would refuse the whole document for one."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v) for v in obj]
    return obj


def unreadable_html(path: Path, exc: BaseException, heading: str | None = None) -> list[str]:
    """The notice that stands in for a section whose file cannot be read (truncated, malformed)."""
    reason = str(exc) if str(path) in str(exc) else f"{type(exc).__name__}: {exc}"
    return ([f"<h2>{_e(heading)}</h2>"] if heading else []) + [
        f"<p class='unreadable'><strong>unreadable:</strong> {_e(path)} could not be read ({_e(reason)}); "
        "this section is left out, the rest of the report is complete</p>"]


def guarded_section(heading: str, path: Path, render: Callable[[], list[str]]) -> list[str]:
    """``render()``, or :func:`unreadable_html` naming ``path`` when the file it reads is broken."""
    try:
        return render()
    except SECTION_ERRORS as exc:
        return unreadable_html(path, exc, heading)


def _n(x: Any, digits: int = 2) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return f"{x:.{digits}f}" if isinstance(x, float) else _e(x)


def calibration_inputs(recs: Sequence[SampleScore]) -> tuple[list[tuple[float, ...]], list[int]]:
    """The per-option log-probabilities and gold indices of the records that carry them: a
    single-letter gold (``"A"``..) within at least two stored option log-probabilities. Records of
    generations, multi-answer gold (``"ABD"``), scales and unreadable log-probabilities (NaN, all
    -inf: :func:`chimed_eval.metrics.calibration.valid_logprobs`) are left out."""
    from chimed_eval.metrics.calibration import valid_logprobs

    lps, gold = [], []
    for r in recs:
        g = r.gold
        if r.logprobs and len(r.logprobs) >= 2 and isinstance(g, str) and len(g) == 1 and "A" <= g <= "Z":
            gi = ord(g) - ord("A")
            if gi < len(r.logprobs) and valid_logprobs(r.logprobs):
                lps.append(tuple(float(x) for x in r.logprobs))
                gold.append(gi)
    return lps, gold


RULE_PREFIX, RULE_SUFFIX = "extraction_rule_", "_count"


def extraction_rules(metrics: Sequence[Metric]) -> dict[str, int]:
    """Records per answer-extraction rule (``cot``: :data:`chimed_eval.extract.letters.RULES`), from
    a task's ``extraction_rule_<rule>_count`` metrics, in their order; empty when it has none."""
    return {m.name[len(RULE_PREFIX):-len(RULE_SUFFIX)]: int(m.value) for m in metrics
            if m.name.startswith(RULE_PREFIX) and m.name.endswith(RULE_SUFFIX)}


def extracted_text(rec: SampleScore) -> str:
    """What was read from a record's output, for the worst-items table beside the raw output: the
    chosen answer (letters, the predicted option; entities as JSON), ``none`` on an extraction
    failure, with the extraction rule when the record carries one (``B (last_letter)``,
    ``none (several)``); empty for free text scored as it is (open QA, dialogue)."""
    rule = rec.extra.get("extraction_rule")
    if rec.extraction_failed:
        value = "none"
    elif rec.prediction is None:
        return ""
    else:
        value = extracted_value(rec) or ""
    return f"{value} ({rule})" if rule and rule != "none" else value


def extracted_value(rec: SampleScore) -> str | None:
    """The answer read from a record's output (letters, the option, entities as JSON); None on an
    extraction failure or where nothing is read (free text scored as it is)."""
    if rec.extraction_failed or rec.prediction is None:
        return None
    return rec.prediction if isinstance(rec.prediction, str) else json.dumps(rec.prediction, ensure_ascii=False)


def extraction_rules_html(metrics: Sequence[Metric]) -> list[str]:
    """A small table, rule -> records, of how the answers were extracted (``none``: failures)."""
    rules = extraction_rules(metrics)
    if not rules:
        return []
    total = sum(rules.values())
    out = ["<h3>Answer extraction (rule that found each answer)</h3>",
           "<table class='extraction-rules'><tr><th>rule</th><th>records</th><th>%</th></tr>"]
    for rule, k in rules.items():
        out.append(f"<tr><td>{_e(rule)}</td><td class='num'>{k}</td>"
                   f"<td class='num'>{_n(100.0 * k / total if total else 0.0)}</td></tr>")
    out.append("</table>")
    return out


def headline(metrics: Sequence[Metric]) -> Metric | None:
    """The figure a task is summed up by (the pages' headline chart, the contamination section, the
    ad-hoc board's default column): :func:`chimed_eval.metrics.primary_metric`."""
    from chimed_eval.metrics import primary_metric

    return primary_metric(metrics)


def usage_html(usage: Any) -> list[str]:
    """The run's cost and latency (``OUT/usage.json``): per task and for the run, tokens, p50/p95
    latency (and time to first token where replies were streamed), requests per second and cost,
    and where the token counts come from; nothing for a run without a usage summary."""
    if not isinstance(usage, dict) or not isinstance(usage.get("tasks"), dict):
        return []
    price = usage.get("price_usd")
    note = (f"price: {_e(price.get('input_per_million'))} / {_e(price.get('output_per_million'))} USD per million "
            f"prompt / completion tokens ({_e(price.get('source'))})" if isinstance(price, dict)
            else "no price: give --price in=X,out=Y for a cost")
    streamed = bool(usage.get("streamed"))
    sources = (usage.get("run") or {}).get("tokens_source") if isinstance(usage.get("run"), dict) else None
    counted = ("; token counts from " + ", ".join(f"{_e(k)} ({_e(v)})" for k, v in sources.items())
               if isinstance(sources, dict) and sources else "")
    out = ["<h2>Cost and latency</h2>", f"<p class='muted'>{note}; requests served by the response cache cost "
           "nothing; " + ("TTFT: time to the first token of a streamed reply" if streamed else
                          "replies were not streamed (no time to first token)") + f"{counted}</p>",
           "<table id='usage'><tr><th>task</th><th>requests</th><th>cached</th><th>prompt tokens</th>"
           "<th>completion tokens</th><th>reasoning tokens</th><th>p50 latency (s)</th><th>p95 latency (s)</th>"
           + ("<th>p50 TTFT (s)</th><th>p95 TTFT (s)</th>" if streamed else "")
           + "<th>requests/s</th><th>cost (USD)</th></tr>"]
    rows = list(usage["tasks"].items()) + [("(run)", usage.get("run") or {})]
    for name, s in rows:
        if not isinstance(s, dict):
            continue
        cells = [s.get(k) for k in ("requests", "cached", "prompt_tokens", "completion_tokens", "reasoning_tokens")]
        cells += [_n(s.get("latency_p50_s"), 3), _n(s.get("latency_p95_s"), 3)]
        if streamed:
            cells += [_n(s.get("ttft_p50_s"), 3), _n(s.get("ttft_p95_s"), 3)]
        cells += [_n(s.get("requests_per_s"), 1), _n(s.get("cost_usd"), 6)]
        out.append(f"<tr><td>{_e(name)}</td>" + "".join(f"<td class='num'>{_e(c) if not isinstance(c, str) else c}</td>"
                                                         for c in cells) + "</tr>")
    out.append("</table>")
    return out
