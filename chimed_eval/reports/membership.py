"""The HTML report's membership section (:mod:`chimed_eval.tasks.membership` records): a histogram of each
score (Min-K%, and Min-K%++ where every record has it) over the task's items, inline SVG drawn
here (no script). With seen/unseen labels the two groups are overlaid, each bar the share of its
own group's items in that bin (so groups of other sizes compare), with the AUC (x100, Mann-Whitney,
:mod:`chimed_eval.metrics.membership`; its interval is in the metrics table above), the n of each
group, and a warning when a group is below the stated size (``small_group_note``). 20 equal-width
bins from the lowest to the highest score of the task."""

from __future__ import annotations

from typing import Sequence

from chimed_eval.reports.sections import _e, _n
from chimed_eval.core.types import SampleScore

BINS = 20
W, H, PAD = 420, 170, 30
COLOURS = {"seen": "#d9622b", "unseen": "#3b75af", "all": "#777777"}
SCORES = (("min_k", "Min-K% Prob (mean of the lowest k% token log-probabilities)"),
          ("min_kpp", "Min-K%++ (mean of the lowest k% normalised token scores)"))


def _is_membership(recs: Sequence[SampleScore]) -> bool:
    return bool(recs) and all(isinstance(r.extra, dict) and "min_k" in r.extra and "seen" in r.extra for r in recs)


def histogram(values: Sequence[float], lo: float, hi: float, bins: int = BINS) -> list[int]:
    """Counts of ``values`` in ``bins`` equal-width bins over [lo, hi] (the last bin closed)."""
    counts = [0] * bins
    width = (hi - lo) / bins if hi > lo else 1.0
    for v in values:
        counts[min(bins - 1, max(0, int((v - lo) / width)))] += 1
    return counts


def _svg(name: str, groups: dict[str, list[float]], lo: float, hi: float) -> list[str]:
    shares = {g: [c / len(v) for c in histogram(v, lo, hi)] for g, v in groups.items() if v}
    top = max((s for sh in shares.values() for s in sh), default=1.0) or 1.0
    bw = W / BINS
    out = [f"<svg class='membership-hist' data-score='{name}' width='{W + 2 * PAD}' height='{H + 2 * PAD}' role='img'>",
           f"<rect x='{PAD}' y='{PAD}' width='{W}' height='{H}' fill='none' stroke='#999'/>"]
    for g, sh in shares.items():
        for i, s in enumerate(sh):
            if s:
                h = H * s / top
                out.append(f"<rect class='hist-bar' data-group='{g}' data-bin='{i}' x='{PAD + i * bw:.1f}' "
                           f"y='{PAD + H - h:.1f}' width='{bw - 1:.1f}' height='{h:.1f}' fill='{COLOURS[g]}' "
                           "fill-opacity='0.55'/>")
    out += [f"<text x='{PAD}' y='{H + 2 * PAD - 8}'>{_n(lo)}</text>",
            f"<text x='{PAD + W}' y='{H + 2 * PAD - 8}' text-anchor='end'>{_n(hi)}</text>",
            f"<text x='{PAD + W / 2}' y='{H + 2 * PAD - 8}' text-anchor='middle'>{_e(name)} (higher: more likely seen)</text>",
            f"<text x='12' y='{PAD + H / 2}' transform='rotate(-90 12 {PAD + H / 2})' text-anchor='middle'>"
            "share of the group</text>"]
    for j, g in enumerate(shares):
        out.append(f"<text x='{PAD + W - 4}' y='{PAD + 14 + 14 * j}' text-anchor='end' fill='{COLOURS[g]}'>"
                   f"{_e(g)} (n={len(groups[g])})</text>")
    out.append("</svg>")
    return out


def membership_html(recs: Sequence[SampleScore]) -> list[str]:
    """The membership section of one task's records; nothing for records of other tasks."""
    if not _is_membership(recs):
        return []
    from chimed_eval.metrics.membership import auc, small_group_note

    k = recs[0].extra.get("k")
    labels = [r.extra.get("seen") for r in recs]
    labelled = any(v is not None for v in labels)
    out = [f"<h3>Membership scores ({len(recs)} items, k = {_e(k)}%)</h3>"]
    for name, title in SCORES:
        vals = [r.extra.get(name) for r in recs]
        if any(v is None for v in vals):
            if name == "min_kpp":
                out.append("<p class='muted membership-unavailable'>Min-K%++ unavailable: the backend returned no "
                           "vocabulary moments (use --backend hf)</p>")
            continue
        vals = [float(v) for v in vals]
        if labelled:
            groups = {"seen": [v for v, s in zip(vals, labels) if s is True],
                      "unseen": [v for v, s in zip(vals, labels) if s is False]}
        else:
            groups = {"all": vals}
        both = labelled and groups["seen"] and groups["unseen"]
        note = ""
        if both:
            sub = [(v, bool(s)) for v, s in zip(vals, labels) if s is not None]
            a = 100.0 * auc([v for v, _ in sub], [s for _, s in sub])
            n_seen, n_unseen = len(groups["seen"]), len(groups["unseen"])
            note = (f"; AUC (x100, seen vs unseen) <span class='auc' data-score='{name}'>{_n(a)}</span> "
                    f"(seen n={n_seen}, unseen n={n_unseen})")
            small = small_group_note(n_seen, n_unseen)
            if small:
                note += f"</p><p class='membership-warning'><strong>warning:</strong> {_e(small)}"
        out.append(f"<p class='membership'>{_e(title)}{note}</p>")
        out += _svg(name, groups, min(vals), max(vals))
    return out
