"""Figures from saved verdicts: ``OUT/judge/<dir>/results.json``. Pure functions of the records.

Per task and judge (``judges``):

* pointwise: ``n`` items, ``n_valid``, ``invalid`` and ``invalid_rate`` (an unreadable verdict is
  left out of every figure, never scored); ``overall`` (mean over valid items of the mean of the
  criteria) and each criterion's mean, with seeded 95% bootstrap intervals (``--verdict logprobs``:
  the records' probability-weighted expectations, :mod:`.logprobs`, in both); ``length_correlation``:
  Spearman's rho of the overall score with the answer's length in characters.
* pairwise: ``n`` comparisons (each asked in both orders); a comparison is valid when both orders
  are, and then combined (:func:`.bias.combine_orders`: a verdict that changes with the order is a
  tie, and a flip); ``wins``/``ties``/``losses`` of the candidate, ``win_rate`` = 100 * (wins +
  ties / 2) / valid with its interval, ``flip_rate``, ``position_preference`` (share of decisive
  single-order verdicts naming the first-shown answer), ``lc_win_rate`` (length-controlled,
  :func:`.bias.length_controlled_win_rate`), invalid comparisons and verdicts.

With several judges: ``aggregate`` (pointwise: per item the mean of the valid judges' scores;
pairwise: per comparison the majority of the judges' outcomes, a split vote being a tie, or with
``--aggregate mean`` the mean of their outcome values, win 1, tie 0.5, loss 0), and ``agreement``:
Cohen's kappa for each pair of judges (pointwise: ``cohen_kappa_by_criterion``, quadratic-weighted
on the scores 1-5, one figure per criterion, never pooled across criteria; pairwise: unweighted on
the combined outcomes) and Krippendorff's alpha over all judges (interval on the overall scores;
ordinal on the outcomes, loss < tie < win). Pointwise ``leniency`` per judge: its mean excess over
the other judges' mean on the same answers, with an interval.

Pointwise with ``--baseline``: the baseline run's answers are graded too (records of order
``baseline``); the main figures stay the candidate's, ``baseline_answers`` holds the baseline's, and
agreement and leniency use every graded answer.

``self_preference`` where a judge is the candidate's or the baseline's model (same weights sha256,
name, or path other than ``fake``): ``delta`` = its excess over the other judges on its own model's
answers (:func:`.bias.self_preference`; NaN with one judge). That alone mixes leniency with
self-preference; when the judge also graded another model's answers (pointwise with
``--baseline``), ``leniency`` (its excess on those) and ``net`` = ``delta`` - ``leniency`` (net
self-preference, with ``net_ci_low``/``net_ci_high``) separate them, ``identifiable`` is true;
otherwise (one candidate, or pairwise, where every comparison holds its own answer) they are
``null``, ``identifiable`` false, and ``note`` says so. ``warnings``: plain sentences from each
judge's own measured flip rate, invalid rate, length correlation and length-controlled gap, and
the self-preference entries. A figure that cannot be computed is ``null``, with a ``note`` saying why.

Pointwise, where the items are the questions of case records (cmb-clin), ``cases``: each case's
scores per judge (:mod:`.cases`).
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Any, Mapping, Sequence

from chimed_eval.judge.store import BASELINE_ORDER, JudgeSettings

FLIP_WARN = 0.20  # flip rate above which a judge's pairwise figures are flagged
INVALID_WARN = 0.10  # share of unreadable verdicts above which a judge is flagged
LENGTH_WARN = 0.50  # |Spearman rho| of score with length above which a judge is flagged
LC_GAP_WARN = 10.0  # points between raw and length-controlled win rate above which a judge is flagged


def _num(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _mean_ci(values: Sequence[float], seed: int) -> dict[str, Any]:
    from chimed_eval.metrics.stats import bootstrap_mean_ci

    if not values:
        return {"value": None, "ci_low": None, "ci_high": None, "n": 0, "note": "no valid verdict"}
    lo, hi = bootstrap_mean_ci(values, seed=seed)
    return {"value": sum(values) / len(values), "ci_low": _num(lo), "ci_high": _num(hi), "n": len(values)}


def same_model(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """Two model identities name the same model: the same weights sha256, name, or real path."""
    if not a or not b:
        return False
    if a.get("weights_sha256") and a.get("weights_sha256") == b.get("weights_sha256"):
        return True
    if a.get("name") and a.get("name") == b.get("name"):
        return True
    from chimed_eval.backends.fake import MODEL_PATH  # the fake models' placeholder path names no weights

    return bool(a.get("path")) and a.get("path") != MODEL_PATH and a.get("path") == b.get("path")


# --- pointwise ---------------------------------------------------------------------------------


def _criterion(rec: Mapping[str, Any], c: str) -> float:
    """A valid record's value on criterion ``c``: the expectation (logprobs mode), else the score."""
    return float((rec.get("expected") or rec["scores"])[c])


def _pointwise_judge(recs: Sequence[dict], criteria: Sequence[str], seed: int) -> dict[str, Any]:
    from chimed_eval.judge.bias import length_correlation

    valid = [r for r in recs if r.get("valid")]
    n = len(recs)
    out: dict[str, Any] = {"n": n, "n_valid": len(valid), "invalid": n - len(valid),
                           "invalid_rate": (n - len(valid)) / n if n else None,
                           "overall": _mean_ci([float(r["overall"]) for r in valid], seed),
                           "criteria": {c: _mean_ci([_criterion(r, c) for r in valid], seed) for c in criteria}}
    rho, used = length_correlation([r["overall"] if r.get("valid") else None for r in recs],
                                   [int(r["len_answer"]) for r in recs])
    out["length_correlation"] = {"spearman": _num(rho), "n": used}
    if not valid:
        out["note"] = "no verdict of this judge could be read: it has no scores (invalid verdicts are never scored)"
    return out


def _pointwise_task(recs_by_judge: Mapping[str, list[dict]], criteria: Sequence[str], seed: int) -> dict[str, Any]:
    """Figures of one task; with ``--baseline`` each judge's records alternate candidate, baseline
    per item: the main figures are the candidate's, ``baseline_answers`` the baseline's."""
    from chimed_eval.judge.agreement import cohen_kappa, krippendorff_alpha, mean_scores

    judges = list(recs_by_judge)
    cand = {j: [r for r in rs if r.get("order") != BASELINE_ORDER] for j, rs in recs_by_judge.items()}
    base = {j: [r for r in rs if r.get("order") == BASELINE_ORDER] for j, rs in recs_by_judge.items()}
    out: dict[str, Any] = {"judges": {j: _pointwise_judge(cand[j], criteria, seed) for j in judges}}
    if any(base.values()):
        out["baseline_answers"] = {j: _pointwise_judge(base[j], criteria, seed) for j in judges}
    if len(judges) < 2:
        return out
    per_item = list(zip(*(cand[j] for j in judges)))
    overall = [mean_scores([r["overall"] if r.get("valid") else None for r in recs]) for recs in per_item]
    crit = {c: [mean_scores([_criterion(r, c) if r.get("valid") else None for r in recs]) for recs in per_item]
            for c in criteria}
    kept = [x for x in overall if x is not None]
    out["aggregate"] = {"rule": "mean", "n": len(per_item), "n_valid": len(kept),
                        "overall": _mean_ci(kept, seed),
                        "criteria": {c: _mean_ci([x for x in v if x is not None], seed) for c, v in crit.items()}}
    kappas: dict[str, dict[str, float | None]] = {c: {} for c in criteria}
    for a, b in combinations(judges, 2):
        for c in criteria:
            ra = [r["scores"][c] if r.get("valid") else None for r in recs_by_judge[a]]
            rb = [r["scores"][c] if r.get("valid") else None for r in recs_by_judge[b]]
            kappas[c][f"{a} | {b}"] = _num(cohen_kappa(ra, rb, weights="quadratic", labels=[1, 2, 3, 4, 5]))
    alpha = krippendorff_alpha([[r["overall"] if r.get("valid") else None for r in recs_by_judge[j]] for j in judges],
                               "interval")
    out["agreement"] = {"cohen_kappa_by_criterion": kappas,
                        "cohen_kappa_rule": "quadratic-weighted on the scores 1-5, one figure per criterion",
                        "krippendorff_alpha": _num(alpha), "krippendorff_alpha_level": "interval (overall score)"}
    out["leniency"] = _leniency(recs_by_judge, seed)
    return out


def _overall_values(recs_by_judge: Mapping[str, list[dict]]) -> dict[str, dict[str, float | None]]:
    """Per judge, the overall score of each graded answer keyed ``order NUL item id``."""
    return {j: {f"{r.get('order')}\x00{r.get('id')}": (r["overall"] if r.get("valid") else None) for r in rs}
            for j, rs in recs_by_judge.items()}


def _leniency(recs_by_judge: Mapping[str, list[dict]], seed: int) -> dict[str, dict[str, Any]]:
    """Per judge its mean excess over the other judges' mean on the same answers (every answer graded)."""
    from chimed_eval.judge.bias import leniency

    values = _overall_values(recs_by_judge)
    out = {}
    for j in recs_by_judge:
        value, (lo, hi), n = leniency(values, j, seed)
        out[j] = {"value": _num(value), "ci_low": _num(lo), "ci_high": _num(hi), "n": n}
    return out


# --- pairwise ----------------------------------------------------------------------------------


def _combined(recs: Sequence[dict]) -> list[tuple[str | None, bool, dict, dict]]:
    """Per comparison (outcome, flipped, AB record, BA record) from the records in AB, BA order."""
    from chimed_eval.judge.bias import combine_orders

    out = []
    for ab, ba in zip(recs[0::2], recs[1::2]):
        outcome, flipped = combine_orders(ab.get("winner"), ba.get("winner"))
        out.append((outcome, flipped, ab, ba))
    return out


def _pairwise_judge(recs: Sequence[dict], seed: int) -> dict[str, Any]:
    from chimed_eval.judge.bias import flip_rate, length_controlled_win_rate, position_preference, win_rate, win_rate_ci

    comps = _combined(recs)
    outcomes = [c[0] for c in comps]
    pairs = [(c[2].get("winner"), c[3].get("winner")) for c in comps]
    n_valid = sum(o is not None for o in outcomes)
    lo, hi = win_rate_ci(outcomes, seed) if n_valid else (math.nan, math.nan)
    out: dict[str, Any] = {
        "n": len(comps), "n_valid": n_valid, "invalid_comparisons": len(comps) - n_valid,
        "invalid_rate": (len(comps) - n_valid) / len(comps) if comps else None,
        "invalid_verdicts": sum(not r.get("valid") for r in recs), "verdicts": len(recs),
        "wins": outcomes.count("win"), "ties": outcomes.count("tie"), "losses": outcomes.count("loss"),
        "win_rate": {"value": _num(win_rate(outcomes)), "ci_low": _num(lo), "ci_high": _num(hi), "n": n_valid},
        "flips": sum(c[1] for c in comps), "flip_rate": _num(flip_rate(pairs)),
        "position_preference": _num(position_preference(pairs)),
        "lc_win_rate": _num(length_controlled_win_rate(outcomes, [c[2]["len_candidate"] for c in comps],
                                                       [c[2]["len_baseline"] for c in comps]))}
    if not n_valid:
        out["note"] = "no comparison of this judge was readable in both orders: it has no win rate"
    return out


def _pairwise_task(recs_by_judge: Mapping[str, list[dict]], rule: str, seed: int) -> dict[str, Any]:
    from chimed_eval.judge.agreement import cohen_kappa, krippendorff_alpha, majority
    from chimed_eval.judge.bias import OUTCOME_VALUE, length_controlled_win_rate, win_rate, win_rate_ci

    judges = list(recs_by_judge)
    out: dict[str, Any] = {"judges": {j: _pairwise_judge(recs_by_judge[j], seed) for j in judges}}
    if len(judges) < 2:
        return out
    combos = {j: _combined(recs_by_judge[j]) for j in judges}
    outcomes = {j: [c[0] for c in combos[j]] for j in judges}
    first = combos[judges[0]]
    if rule == "majority":
        agg = [majority(list(votes)) for votes in zip(*(outcomes[j] for j in judges))]
        lo, hi = win_rate_ci(agg, seed) if any(o is not None for o in agg) else (math.nan, math.nan)
        out["aggregate"] = {"rule": "majority", "n": len(agg), "n_valid": sum(o is not None for o in agg),
                            "wins": agg.count("win"), "ties": agg.count("tie"), "losses": agg.count("loss"),
                            "win_rate": {"value": _num(win_rate(agg)), "ci_low": _num(lo), "ci_high": _num(hi)},
                            "lc_win_rate": _num(length_controlled_win_rate(
                                agg, [c[2]["len_candidate"] for c in first], [c[2]["len_baseline"] for c in first]))}
    else:
        vals = [[OUTCOME_VALUE[o] for o in votes if o is not None] for votes in zip(*(outcomes[j] for j in judges))]
        means = [100.0 * sum(v) / len(v) for v in vals if v]
        out["aggregate"] = {"rule": "mean", "n": len(vals), "n_valid": len(means), "win_rate": _mean_ci(means, seed)}
    kappas = {f"{a} | {b}": _num(cohen_kappa(outcomes[a], outcomes[b])) for a, b in combinations(judges, 2)}
    out["agreement"] = {"cohen_kappa": kappas, "cohen_kappa_rule": "unweighted, combined outcomes win/tie/loss",
                        "krippendorff_alpha": _num(krippendorff_alpha(
                            [[None if o is None else OUTCOME_VALUE[o] for o in outcomes[j]] for j in judges], "ordinal")),
                        "krippendorff_alpha_level": "ordinal (combined outcomes, loss < tie < win)"}
    return out


# --- self-preference and warnings ---------------------------------------------------------------


def _self_preference(protocol: str, recs_by_judge: Mapping[str, list[dict]], state: Mapping[str, Any],
                     seed: int) -> list[dict[str, Any]]:
    """One entry per judge that is the candidate's (or the baseline's) model: ``delta`` (its excess
    over the other judges on its own model's answers), and where it also graded another model's
    answers (pointwise with ``--baseline``) ``leniency`` (the same excess on those) and ``net`` =
    ``delta`` - ``leniency``; otherwise ``identifiable`` is false and ``note`` says why."""
    from chimed_eval.judge.bias import pairwise_self_preference, self_preference

    models = state.get("judge_models") or {}
    cand = (state.get("candidate") or {}).get("model")
    base = (state.get("baseline") or {}).get("model")
    out = []
    for j in recs_by_judge:
        role = "candidate" if same_model(models.get(j), cand) else ("baseline" if same_model(models.get(j), base) else None)
        if role is None:
            continue
        if protocol == "pointwise":
            values = _overall_values(recs_by_judge)
            producer = {k: ("baseline" if k.startswith(BASELINE_ORDER + "\x00") else "candidate") for k in values[j]}
            sp = self_preference(values, producer, j, role, seed)
        else:
            flip = {"win": "loss", "loss": "win", "tie": "tie", None: None}
            values = {k: {str(i): (c[0] if role == "candidate" else flip[c[0]]) for i, c in enumerate(_combined(rs))}
                      for k, rs in recs_by_judge.items()}
            sp = pairwise_self_preference(values, {i: "own" for i in values[j]}, j, "own", seed)
        d = {"judge": j, "judges_its_own": role, "own": _num(sp.own), "peers": _num(sp.peers), "delta": _num(sp.delta),
             "ci_low": _num(sp.ci[0]), "ci_high": _num(sp.ci[1]), "n": sp.n,
             "leniency": _num(sp.leniency), "n_other": sp.n_other, "net": _num(sp.net),
             "net_ci_low": _num(sp.net_ci[0]), "net_ci_high": _num(sp.net_ci[1])}
        d["identifiable"] = d["net"] is not None
        if len(recs_by_judge) < 2:
            d["note"] = "measuring self-preference needs a second judge to compare with (--judge A,B)"
        elif not d["identifiable"]:
            d["note"] = (f"not identifiable: {j} graded only comparisons that include its own model's answer, so its "
                         "excess over the other judges is self-preference and its other preferences (length, style) "
                         "together" if protocol == "pairwise" else
                         f"not identifiable: {j} graded only its own model's answers, so its excess over the other judges "
                         "is leniency and self-preference together; grade a second model's answers too "
                         "(pointwise --baseline OUT2) to tell them apart")
        out.append(d)
    return out


def _warnings(protocol: str, figures: Mapping[str, dict], selfpref: Sequence[dict]) -> list[str]:
    out = []
    for j, f in figures.items():
        if f["n"] and f["n_valid"] == 0:
            out.append(f"judge {j}: none of its {f['n']} verdicts could be read; it has no figures")
        elif f.get("invalid_rate") and f["invalid_rate"] > INVALID_WARN:
            out.append(f"judge {j}: {f['invalid_rate']:.0%} of its verdicts could not be read and were left out; "
                       f"its figures rest on {f['n_valid']} of {f['n']} items")
        if protocol == "pairwise":
            if f.get("flip_rate") is not None and f["flip_rate"] > FLIP_WARN:
                out.append(f"judge {j}: its verdicts depend on answer order in {f['flip_rate']:.0%} of pairs; "
                           "treat its win rate as unreliable")
            raw, lc = f["win_rate"]["value"], f.get("lc_win_rate")
            if raw is not None and lc is not None and abs(raw - lc) > LC_GAP_WARN:
                out.append(f"judge {j}: its win rate moves from {raw:.1f} to {lc:.1f} when answer length is controlled; "
                           "length sways its verdicts")
        else:
            rho = f["length_correlation"]["spearman"]
            if rho is not None and abs(rho) > LENGTH_WARN and f["length_correlation"]["n"] >= 5:
                out.append(f"judge {j}: its scores follow answer length (Spearman rho {rho:+.2f}); "
                           f"{'longer' if rho > 0 else 'shorter'} answers score higher")
    for s in selfpref:
        if s.get("net") is not None:
            what = (f" (it scores its own model's answers {s['delta']:+.2f} above the other judges, others' "
                    f"{s['leniency']:+.2f}: net self-preference {s['net']:+.2f})")
        elif s["delta"] is not None:
            what = (f" ({s['delta']:+.2f} over the other judges on its own model's answers; leniency and "
                    "self-preference cannot be told apart here)")
        else:
            what = ""
        out.append(f"judge {s['judge']} is the {s['judges_its_own']} model: it grades its own answers" + what)
    return out


def judge_results(items: Mapping[str, list], records: Mapping[str, list[dict]], settings: JudgeSettings,
                  state: Mapping[str, Any]) -> dict[str, Any]:
    """results.json of one judge directory from the records of this invocation's items, in
    canonical order (item, judge, order)."""
    from chimed_eval.judge.cases import case_figures
    from chimed_eval.prompts.judge import PROMPT_VERSION, rubric_criteria

    criteria = [c.name for c in rubric_criteria(settings.rubric)]
    per = len(settings.orders)
    tasks = {}
    for task, recs in records.items():
        by_judge: dict[str, list[dict]] = {j: [] for j in settings.judges}
        for r in recs:
            by_judge[r["judge"]].append(r)
        assert all(len(v) == per * len(items[task]) for v in by_judge.values())
        if settings.protocol == "pointwise":
            fig = _pointwise_task(by_judge, criteria, settings.seed)
            cases = case_figures(items[task], by_judge, criteria)
            if cases is not None:  # questions of case records (cmb-clin): the scores per case too
                fig["cases"] = cases
        else:
            fig = _pairwise_task(by_judge, settings.aggregate_rule, settings.seed)
        fig["self_preference"] = _self_preference(settings.protocol, by_judge, state, settings.seed)
        fig["warnings"] = _warnings(settings.protocol, fig["judges"], fig["self_preference"])
        tasks[task] = {"n": len(items[task]), **fig}
    return {"format": 1, "protocol": f"judge-{settings.protocol}", "verdict": settings.verdict,
            "judges": list(settings.judges),
            "backend": settings.backend, "rubric": settings.rubric if settings.protocol == "pointwise" else None,
            "criteria": criteria if settings.protocol == "pointwise" else None, "aggregate": settings.aggregate_rule,
            "prompt_version": PROMPT_VERSION, "settings": settings.key(), "seed": settings.seed,
            "limit": settings.limit, "candidate": state.get("candidate"), "baseline": state.get("baseline"),
            "judge_models": state.get("judge_models"), "chat_templates": state.get("chat_templates"), "tasks": tasks}
