"""Regression checks: compare a run against a baseline and say what moved.

``chimed-eval check RESULTS --baseline BASELINE [--tolerance ...]`` exits with

* **0**: every baseline metric is within tolerance, and item sets and prompts are unchanged;
* **1**: a metric moved outside the baseline's 95% interval (or the given tolerance), or a
  baseline metric is missing; item sets and prompts are unchanged;
* **2**: usage or configuration error: a file missing, unreadable or not a results/baseline file,
  or a baseline that cannot be compared against (no tasks or metrics, a metric value that is not a
  finite number, malformed ``items``, an interval that does not contain its value or reaches
  outside or covers the whole of the metric's range); the message names the file and what is wrong;
* **3**: an item set changed (the hash of the ordered item ids, or a task is missing) or the
  prompt of an item changed (per-item prompt hashes, or the hash of all of them). This takes
  precedence over 1: metrics over other items or prompts are not comparable (they are still
  listed).

Tolerance: without ``--tolerance`` a metric must lie inside the baseline's ``[ci_low, ci_high]``
(a metric without an interval, such as a count, must be equal within 1e-9). Figures computed from
the model's floating-point outputs (``ece``, ``brier``: :data:`MODEL_FLOAT_NOISE`, declared by
their metric module) may also move by their stated float noise (1e-4 points of ``ece``) on top of
any interval or tolerance: float32 log-probabilities differ in their last bits between CPUs.
Counts, accuracies, hashes and prompts stay exact. ``--tolerance 0.5``
allows ``|current - baseline| <= 0.5`` points for every metric; ``acc=0.5,f1=1`` per metric name
and ``mcq:acc=0`` per task and metric (the most specific wins). Moves in either direction count:
a golden run is deterministic, so an unexplained improvement is as suspicious as a drop. A moved
metric's delta says whether it went the better or the worse way, as the module defining the metric
declares it (:func:`chimed_eval.metrics.metric_direction`: ``ece``, ``brier``, ``position_bias`` and
failure rates are lower-is-better; counts and ``pred_share_<letter>`` have no direction; a name no
module declares is higher-is-better). Metrics are matched by exact name, and a changed protocol or
averaging fails the metric: ``circular_acc`` (protocol ``paper+circular4``) is compared only with
``circular_acc``. Metrics the run reports and the baseline lacks (ECE and Brier added to an older baseline) do not
fail; ``--all`` lists them.

RESULTS and BASELINE are each a run's output directory, its results.json, or a baseline file
written by ``chimed-eval check RUN --save-baseline FILE`` (metrics and hashes only: item ids
and prompt hashes, never prompt or item text). Per-item prompt hashes come from the baseline
file or from ``OUT/samples/<task>.jsonl`` next to a results.json; without them only the hash of
all prompts is compared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from chimed_eval.reports.baseline import baseline_dict, save_baseline  # noqa: F401  (importable from here)
from chimed_eval.reports.view import RunView, TaskView, load_view  # noqa: F401  (importable from here)
from chimed_eval.core.errors import ConfigError
from chimed_eval.metrics.calibration import MODEL_FLOAT_NOISE
from chimed_eval.metrics import metric_direction  # each metric module declares its direction

EXIT_OK, EXIT_REGRESSION, EXIT_USAGE, EXIT_CHANGED = 0, 1, 2, 3
EXACT = 1e-9


# --- tolerance ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tolerance:
    default: float | None = None
    by_metric: Mapping[str, float] = field(default_factory=dict)
    by_task_metric: Mapping[tuple[str, str], float] = field(default_factory=dict)

    def for_(self, task: str, metric: str) -> float | None:
        if (task, metric) in self.by_task_metric:
            return self.by_task_metric[(task, metric)]
        if metric in self.by_metric:
            return self.by_metric[metric]
        return self.default


def parse_tolerance(text: str | None) -> Tolerance:
    """``0.5`` | ``acc=0.5,f1=1`` | ``mcq:acc=0`` | a mix (comma-separated)."""
    if not text:
        return Tolerance()
    default, by_m, by_tm = None, {}, {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        key, sep, val = part.rpartition("=")
        try:
            x = float(val)
        except ValueError:
            raise ConfigError(f"--tolerance: {part!r} is not NUMBER, METRIC=NUMBER or TASK:METRIC=NUMBER") from None
        if x < 0 or math.isnan(x):
            raise ConfigError(f"--tolerance: {part!r} must be >= 0")
        if not sep:
            default = x
        elif ":" in key:
            t, m = key.split(":", 1)
            by_tm[(t.strip(), m.strip())] = x
        else:
            by_m[key.strip()] = x
    return Tolerance(default, by_m, by_tm)


# --- the check ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    task: str
    what: str
    baseline: str
    current: str
    delta: str
    allowed: str
    status: str  # ok | REGRESSION | CHANGED | note
    kind: str  # metric | items | prompts | setting | task

    @property
    def moved(self) -> bool:
        return self.status in ("REGRESSION", "CHANGED")


@dataclass
class CheckReport:
    results: Path
    baseline: Path
    findings: list[Finding]

    @property
    def exit_code(self) -> int:
        if any(f.status == "CHANGED" for f in self.findings):
            return EXIT_CHANGED
        if any(f.status == "REGRESSION" for f in self.findings):
            return EXIT_REGRESSION
        return EXIT_OK

    def table(self, show_all: bool = False) -> str:
        rows = [f for f in self.findings if show_all or f.moved or f.status == "note"]
        head = ("task", "check", "baseline", "current", "Δ", "allowed", "status")
        body = [(f.task, f.what, f.baseline, f.current, f.delta, f.allowed, f.status) for f in rows]
        widths = [max(len(str(x)) for x in col) for col in zip(head, *body)] if body else [len(h) for h in head]
        fmt = "  ".join(f"{{:{w}}}" for w in widths)
        lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
        lines += [fmt.format(*r) for r in body]
        n_metric = sum(1 for f in self.findings if f.kind == "metric")
        moved = sum(1 for f in self.findings if f.moved)
        verdict = {EXIT_OK: "ok", EXIT_REGRESSION: "REGRESSION: a metric moved outside tolerance",
                   EXIT_CHANGED: "CHANGED: an item set or a prompt changed"}[self.exit_code]
        lines.append("")
        lines.append(f"{verdict} ({moved} moved; {n_metric} metric checks; exit {self.exit_code})")
        return "\n".join(lines if body else lines[2:]) + "\n"


def _fmt(x: Any) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        return f"{x:.4f}" if abs(x) < 1e4 else f"{x:.4g}"
    return str(x)


def _short(h: str | None) -> str:
    return (h or "-")[:12]


def check_against_baseline(results: Path, baseline: Path, tolerance: Tolerance | None = None) -> CheckReport:
    tol = tolerance or Tolerance()
    cur, base = load_view(results, "results"), load_view(baseline, "baseline")
    rep = CheckReport(cur.source, base.source, [])
    add = rep.findings.append
    bw, cw = base.weights_sha256, cur.weights_sha256
    if bw and cw and bw != cw:
        add(Finding("(model)", "weights sha256", _short(bw), _short(cw), "", "", "note", "setting"))
    for side, v in (("baseline", base), ("current", cur)):
        if v.integrity.startswith("unverified"):
            add(Finding(f"({side})", "figures vs records", "", v.integrity, "", "", "note", "setting"))
    for name, bt in base.tasks.items():
        ct = cur.tasks.get(name)
        if ct is None:
            add(Finding(name, "task", "present", "missing", "", "", "CHANGED", "task"))
            continue
        items_changed = _check_items(rep, name, bt, ct, base.items.get(name), cur.items.get(name))
        if not items_changed:
            _check_prompts(rep, name, bt, ct, base.items.get(name), cur.items.get(name))
        for key in ("variant", "shots"):
            if getattr(bt, key) != getattr(ct, key):
                add(Finding(name, key, _fmt(getattr(bt, key)), _fmt(getattr(ct, key)), "", "", "note", "setting"))
        b_data, c_data = bt.data_sha256, ct.data_sha256
        if b_data and c_data and b_data != c_data:
            add(Finding(name, "data file hashes", ",".join(map(_short, b_data)), ",".join(map(_short, c_data)), "", "",
                        "note", "setting"))
        _check_metrics(rep, name, bt, ct, tol)
    for name in cur.tasks:
        if name not in base.tasks:
            add(Finding(name, "task", "absent", "present", "", "", "note", "task"))
    return rep


def _check_items(rep: CheckReport, task: str, bt: TaskView, ct: TaskView, bitems, citems) -> bool:
    if bt.items_sha256 == ct.items_sha256:
        rep.findings.append(Finding(task, "item set", f"n={bt.n} {_short(bt.items_sha256)}",
                                    f"n={ct.n} {_short(ct.items_sha256)}", "", "equal", "ok", "items"))
        return False
    detail = ""
    if bitems is not None and citems is not None:
        b_ids, c_ids = [i for i, _ in bitems], [i for i, _ in citems]
        removed = [i for i in b_ids if i not in set(c_ids)]
        added = [i for i in c_ids if i not in set(b_ids)]
        if not removed and not added:
            detail = " (same ids, other order)"
        else:
            detail = f" (-{len(removed)} +{len(added)}: {', '.join([*('-' + i for i in removed[:3]), *('+' + i for i in added[:3])])})"
    rep.findings.append(Finding(task, "item set" + detail, f"n={bt.n} {_short(bt.items_sha256)}",
                                f"n={ct.n} {_short(ct.items_sha256)}", f"{ct.n - bt.n:+d}", "equal",
                                "CHANGED", "items"))
    return True


def _check_prompts(rep: CheckReport, task: str, bt: TaskView, ct: TaskView, bitems, citems) -> None:
    if bitems is not None and citems is not None:
        cur = dict(citems)
        changed = [i for i, h in bitems if cur.get(i) != h]
        if changed:
            shown = ", ".join(changed[:5]) + (", ..." if len(changed) > 5 else "")
            rep.findings.append(Finding(task, f"prompt hash of {len(changed)}/{len(bitems)} items ({shown})",
                                        _short(bitems[[i for i, _ in bitems].index(changed[0])][1]),
                                        _short(cur.get(changed[0])), "", "equal", "CHANGED", "prompts"))
            return
    if bt.prompts_sha256 != ct.prompts_sha256:
        rep.findings.append(Finding(task, "prompt hash (all items)", _short(bt.prompts_sha256),
                                    _short(ct.prompts_sha256), "", "equal", "CHANGED", "prompts"))
    else:
        rep.findings.append(Finding(task, "prompt hashes", _short(bt.prompts_sha256), _short(ct.prompts_sha256),
                                    "", "equal", "ok", "prompts"))


def _delta_text(name: str, d: float) -> str:
    """The signed move, with ``better``/``worse`` when the metric has a direction."""
    direction = metric_direction(name)
    if direction is None or abs(d) <= EXACT:
        return f"{d:+.4f}"
    better = (d < 0) if direction == "lower" else (d > 0)
    return f"{d:+.4f} ({'better' if better else 'worse'})"


def _check_metrics(rep: CheckReport, task: str, bt: TaskView, ct: TaskView, tol: Tolerance) -> None:
    """Each baseline metric against the current one of the same name: its own name, never another's
    (``circular_acc`` is compared with ``circular_acc``, never with ``acc``); a changed protocol or
    averaging fails. Metrics the run has and the baseline lacks are listed (shown with ``--all``)."""
    cur = {m.name: m for m in ct.metrics}
    base_names = {m.name for m in bt.metrics}
    for m in ct.metrics:
        if m.name not in base_names:
            rep.findings.append(Finding(task, m.name + (f" ({m.protocol})" if m.protocol else ""), "absent",
                                        _fmt(float(m.value)), "", "", "ok", "new metric"))
    for bm in bt.metrics:
        name = bm.name
        cm = cur.get(name)
        if cm is None:
            rep.findings.append(Finding(task, name, _fmt(bm.value), "missing", "", "", "REGRESSION", "metric"))
            continue
        b, c = bm.value, cm.value  # a value that could not be computed reads as NaN
        t = tol.for_(task, name)
        if math.isnan(b) or math.isnan(c):
            same = math.isnan(b) and math.isnan(c)
            rep.findings.append(Finding(task, name, _fmt(b), _fmt(c), "", "equal", "ok" if same else "REGRESSION", "metric"))
            continue
        d = float(c) - float(b)
        noise = MODEL_FLOAT_NOISE.get(name, 0.0)  # a figure computed from the model's floats
        eps, plus = EXACT + noise, f" ±{noise:g} float noise" if noise else ""
        if t is not None:
            ok, allowed = abs(d) <= t + eps, f"±{t:g}" + plus
        elif bm.ci_low is not None and bm.ci_high is not None:
            lo, hi = float(bm.ci_low), float(bm.ci_high)
            ok, allowed = lo - eps <= float(c) <= hi + eps, f"[{lo:.2f}, {hi:.2f}]" + plus
        else:
            ok, allowed = abs(d) <= eps, f"±{noise:g} (float noise)" if noise else "equal"
        what = name + (f" ({bm.protocol})" if bm.protocol else "")
        if cm.protocol != bm.protocol:
            what += f" protocol {bm.protocol}->{cm.protocol}"
            ok = False
        if bm.averaging is not None and cm.averaging is not None and cm.averaging != bm.averaging:
            what += f" averaging {bm.averaging}->{cm.averaging}"
            ok = False
        rep.findings.append(Finding(task, what, _fmt(float(b)), _fmt(float(c)), _delta_text(name, d), allowed,
                                    "ok" if ok else "REGRESSION", "metric"))
