"""Scoring an item several times: ``--shuffle-choices K`` (option permutations) and ``--repeats K``
(sampled answers), on the runner's one-record-per-item model.

Both expand each item, before any request is built, into K items of their own:

* ``--shuffle-choices K``: item ``X`` becomes ``X#p0`` ... ``X#p<K-1>``, item k showing its options
  in the order ``permutations(n, K, seed, X)[k]`` (:mod:`chimed_eval.metrics.robustness`: the
  identity first, then K - 1 seeded distinct permutations, whatever K is).
  ``--shuffle-choices circular``: item ``X`` of n options becomes ``X#p0`` ... ``X#p<n-1>``, its n
  rotations (``rotations(n)``, each item's own n: CircularEval). Permutation 0 is always the
  identity, so ``X#p0`` renders exactly the unshuffled prompt. The gold index (or every gold index
  of a multi-answer item) moves with its option.
* ``--repeats K``: item ``X`` becomes ``X#r0`` ... ``X#r<K-1>``, the same prompt K times; the
  runner seeds each sampled request from (run seed, request key), so each repeat has its own seed
  per (seed, item, k) and a resumed run draws exactly the same samples.

So requests, records, resume, the response cache, shards and ``chimed-eval score`` work
unchanged. Each expanded sample keeps in ``metadata`` (and its record in ``extra``, via
:func:`expansion_extra`) what it is: ``{"shuffle": {"of": X, "k": k, "permutation": [...]}}`` or
``{"repeat": {"of": X, "k": k}}``. Only records carry it to the figures, so ``score`` recomputes
the same figures from the records alone.

Figures (:func:`primary_pass`, :func:`expanded_figures`): the task's own ``acc`` / ``acc_macro``
/ per-subject breakdown are computed on pass 0 only (the unshuffled pass; the first sample), so
``acc`` keeps its meaning and its protocol. Beside them, under their own names and a protocol
that names the expansion (``<variant>+circular<n>`` when every item was shown its n rotations,
``<variant>+circular`` when n differs between items, ``<variant>+shuffle<K>`` otherwise,
``<variant>+repeats<K>``): ``acc_shuffled``, ``circular_acc`` (rotations) or ``all_orders_acc``
(sampled orders: not CircularEval), ``pred_share_<letter>``, ``position_bias`` (shuffle);
``avg@K``, ``maj@K``, ``pass@1``, ``pass@K``
(repeats; open QA and dialogue keep their text figures, then over all K x n generations). Every
averaging is named in results.json's vocabulary (:data:`AVERAGING`). Letter-scored records
(per-option log-probabilities) also get ``ece`` and ``brier`` (:mod:`chimed_eval.metrics.calibration`)
on pass 0, under the variant's protocol, over the records whose log-probabilities are readable;
``invalid_logprob_count`` counts the others (NaN, +inf, all -inf), which score as wrong.

Refusals (ConfigError, before any model loads): shuffling items without options (generation,
NER), K below 2 or above n! for an item of n options; ``--repeats`` above 1 when a request of the
task decodes greedily (every repeat would be the same text): open QA takes ``--decoding
paper-sampling``, and so do the exam variants that generate (``generate``, ``cot``), which
honour ``--decoding`` through :func:`mc_generation_config`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence, TypeVar

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import GenerationConfig, Metric, Request, Sample, SampleScore

SHUFFLE, REPEAT = "shuffle", "repeat"
CIRCULAR = "circular"  # --shuffle-choices circular: each item under its own n rotations
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#: ``--decoding`` for the exam variants that generate: (temperature, top_p). ``greedy`` is what they
#: always did; ``paper-sampling`` is the ChiMed-GPT authors' sampling (as for open QA).
MC_DECODING = {"greedy": (0.0, 1.0), "paper-sampling": (1.0, 0.85)}
E = TypeVar("E")


# --- expansion (runner.prepare) --------------------------------------------------------------------


def _map_target(target: Any, permutation: Sequence[int], item: str) -> Any:
    """The gold in shown positions: shown j holds original permutation[j], so original g is shown
    at permutation.index(g). A set of indices (multi-answer) maps every index, keeping its type."""
    if isinstance(target, bool) or target is None or isinstance(target, str):
        raise ConfigError(f"item {item!r}: --shuffle-choices needs an option index as the answer, got {target!r}")
    if isinstance(target, int):
        return permutation.index(target)
    mapped = sorted(permutation.index(int(g)) for g in target)
    return frozenset(mapped) if isinstance(target, (set, frozenset)) else type(target)(mapped)


def parse_shuffle_choices(text: str | None) -> int | str | None:
    """``--shuffle-choices``: an integer K >= 2 (K sampled orders) or ``circular`` (each item's n
    rotations); None when not given. A ConfigError naming the flag otherwise."""
    if text is None:
        return None
    if text.strip().lower() == CIRCULAR:
        return CIRCULAR
    try:
        k = int(text)
    except ValueError:
        k = 0
    if k < 2:
        raise ConfigError(f"--shuffle-choices {text}: expected an integer K >= 2 (K sampled option orders) or "
                          "'circular' (each item's n rotations: CircularEval)")
    return k


def expand_shuffled(samples: Sequence[Sample], k: int | str, seed: int, task: str) -> list[Sample]:
    """Each sample as K samples ``<id>#p<j>`` (``k = "circular"``: as its n rotations), options in
    permutation j's order (see the module docstring); the items' order is kept and an item's
    permutations follow each other."""
    from math import factorial

    from chimed_eval.metrics.robustness import apply_permutation, permutations, rotations

    circular = k == CIRCULAR
    if not circular and (isinstance(k, str) or k < 2):
        raise ConfigError(f"--shuffle-choices {k}: expected K >= 2 sampled orders, or 'circular' (each item's n "
                          "rotations: CircularEval)")
    out = []
    for s in samples:
        n = len(s.choices)
        if n < 2:
            raise ConfigError(f"task {task!r}: item {s.id!r} has no options to shuffle; --shuffle-choices is for "
                              "multiple-choice tasks only (not generation, NER or dialogue)")
        if not circular and int(k) > factorial(n):
            raise ConfigError(f"task {task!r}: item {s.id!r} has {n} options, so at most {factorial(n)} orders; "
                              f"--shuffle-choices {k} asks for more")
        for j, perm in enumerate(rotations(n) if circular else permutations(n, int(k), seed, s.id)):
            meta = {**s.metadata, SHUFFLE: {"of": s.id, "k": j, "permutation": list(perm)}}
            out.append(dataclasses.replace(s, id=f"{s.id}#p{j}", choices=apply_permutation(s.choices, perm),
                                           target=_map_target(s.target, perm, s.id), metadata=meta))
    return out


def seed_id(sample: Sample) -> str:
    """The id a sampled request of ``sample`` is seeded from: the item's own id for pass 0 of
    ``--shuffle-choices`` (``X#p0`` renders exactly the unshuffled prompt, so with the plain run's
    seed it is exactly the plain run's request), else the sample id (``X#p1``, ``X#r0``: each
    order and each repeat draws its own sample)."""
    info = sample.metadata.get(SHUFFLE)
    if isinstance(info, Mapping) and int(info.get("k", -1)) == 0:
        return str(info["of"])
    return sample.id


def expand_repeats(samples: Sequence[Sample], k: int) -> list[Sample]:
    """Each sample as K identical samples ``<id>#r<j>`` (their requests are seeded apart by key)."""
    if k < 1:
        raise ConfigError(f"--repeats {k}: expected K >= 1")
    return [dataclasses.replace(s, id=f"{s.id}#r{j}", metadata={**s.metadata, REPEAT: {"of": s.id, "k": j}})
            for s in samples for j in range(k)]


def check_sampled(requests: Sequence[Request], k: int, task: str) -> None:
    """``--repeats K > 1`` needs every request to sample (a greedy answer repeats itself)."""
    if k > 1 and any(r.generation is None or r.generation.greedy for r in requests):
        raise ConfigError(f"task {task!r}: --repeats {k} needs sampled decoding, but this task's requests are "
                          "greedy or letter-scored; add --decoding paper-sampling (open QA, dialogue, and the exam "
                          "variants that generate: --variant generate or cot)")


def mc_generation_config(gen: GenerationConfig, decoding: str | None) -> GenerationConfig:
    """An exam generation request under ``--decoding`` (None or ``greedy``: unchanged)."""
    if decoding is None or decoding == "greedy":
        return gen
    if decoding not in MC_DECODING:
        raise ConfigError(f"unknown decoding {decoding!r}; choose from {sorted(MC_DECODING)}")
    temperature, top_p = MC_DECODING[decoding]
    return dataclasses.replace(gen, temperature=temperature, top_p=top_p)


def expansion_extra(sample: Sample) -> dict[str, Any]:
    """What a record keeps of its sample's expansion (``extra["shuffle"]`` / ``extra["repeat"]``);
    empty for an item that was not expanded, so existing records are unchanged."""
    return {key: sample.metadata[key] for key in (SHUFFLE, REPEAT) if key in sample.metadata}


# --- figures (evidence.choice_figures) ------------------------------------------------------------


def _pass(s: SampleScore) -> int:
    for key in (SHUFFLE, REPEAT):
        info = s.extra.get(key)
        if isinstance(info, Mapping):
            return int(info["k"])
    return 0


def primary_pass(scores: Sequence[SampleScore], evidence: Sequence[E]) -> tuple[list[SampleScore], list[E]]:
    """The records (and their evidence) of pass 0: all of them for a run without expansion."""
    keep = [i for i, s in enumerate(scores) if _pass(s) == 0]
    return [scores[i] for i in keep], [evidence[i] for i in keep]


def letters_of(value: Any) -> tuple[int, ...] | None:
    """Option indices of a record's gold or prediction: ``"B"``, ``"ABD"``, ``["A", "D"]``; None
    when nothing was predicted or the value holds something else than option letters."""
    if value is None:
        return None
    if isinstance(value, str):
        chars = [c for c in value if not c.isspace() and c not in ",、"]
    elif isinstance(value, (list, tuple, set, frozenset)):
        chars = [str(c) for c in value]
    else:
        return None
    if not chars or any(len(c) != 1 or c not in LETTERS for c in chars):
        return None
    return tuple(sorted({LETTERS.index(c) for c in chars}))


def _permuted_results(scores: Sequence[SampleScore]):
    from chimed_eval.metrics.robustness import PermutedResult

    out = []
    for s in scores:
        info = s.extra[SHUFFLE]
        perm = tuple(int(i) for i in info["permutation"])
        gold, pred = letters_of(s.gold), letters_of(s.prediction)
        if gold is None:
            raise ConfigError(f"record {s.id!r}: gold {s.gold!r} is not option letters")
        if pred is not None and any(i >= len(perm) for i in pred):
            pred = None  # a letter the item does not have: not an answer
        orig_gold = tuple(sorted(perm[i] for i in gold))
        orig_pred = None if pred is None else tuple(sorted(perm[i] for i in pred))
        out.append(PermutedResult(str(info["of"]), int(info["k"]), perm,
                                  orig_pred[0] if orig_pred is not None and len(orig_pred) == 1 else orig_pred,
                                  orig_gold[0] if len(orig_gold) == 1 else orig_gold))
    return out


def shuffle_protocol(variant: str, results: Sequence[Any]) -> str:
    """``<variant>+circular<n>`` when every item was shown its n rotations (``<variant>+circular``
    when n differs between items), else ``<variant>+shuffle<K>`` (K the largest number of orders
    of an item). ``results``: :class:`chimed_eval.metrics.robustness.PermutedResult` records."""
    from chimed_eval.metrics.robustness import is_circular

    if is_circular(results):
        ns = {len(r.permutation) for r in results}
        return f"{variant}+{CIRCULAR}{ns.pop() if len(ns) == 1 else ''}"
    ks: dict[str, int] = {}
    for r in results:
        ks[r.item_id] = ks.get(r.item_id, 0) + 1
    return f"{variant}+shuffle{max(ks.values())}"


def _repeat_figures(scores: Sequence[SampleScore], variant: str, seed: int) -> list[Metric]:
    from chimed_eval.metrics.repeats import RepeatOutcome, repeat_metrics

    outcomes = [RepeatOutcome(str(s.extra[REPEAT]["of"]), int(s.extra[REPEAT]["k"]),
                              letters_of(s.prediction), s.score == 1.0) for s in scores]
    k = max(o.repeat for o in outcomes) + 1
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.item_id] = counts.get(o.item_id, 0) + 1
    if set(counts.values()) != {k}:
        return []  # one --shard of the repeats holds some of each item's: `chimed-eval merge` reports them
    return repeat_metrics(outcomes, seed, pass_ks=sorted({1, k}), protocol=f"{variant}+repeats{k}")


def _calibration_figures(scores: Sequence[SampleScore], variant: str, seed: int) -> list[Metric]:
    """``ece`` and ``brier`` when every record is letter-scored with a single gold letter, over the
    records whose log-probabilities are readable (NaN, +inf or all -inf are not:
    :func:`chimed_eval.metrics.calibration.valid_logprobs`; :func:`_invalid_logprob_figures` counts them)."""
    from chimed_eval.metrics.calibration import calibration_metrics, valid_logprobs

    rows, gold = [], []
    for s in scores:
        g = letters_of(s.gold)
        if not s.logprobs or g is None or len(g) != 1 or g[0] >= len(s.logprobs):
            return []
        if valid_logprobs(s.logprobs):
            rows.append(list(s.logprobs))
            gold.append(g[0])
    return calibration_metrics(rows, gold, seed, protocol=variant)[0] if rows else []


def _invalid_logprob_figures(scores: Sequence[SampleScore], variant: str) -> list[Metric]:
    """``invalid_logprob_count``, when some letter-scored record's log-probabilities are unreadable
    (such a record counts as wrong and is left out of ece/brier): n = the records (items, or
    records under --shuffle-choices / --repeats). The summary and the report turn it into a
    warning (:mod:`chimed_eval.reports.notes`); absent when every record is readable."""
    from chimed_eval.metrics.calibration import valid_logprobs

    scored = [s for s in scores if s.generation is None and s.logprobs]
    invalid = sum(1 for s in scored if not valid_logprobs(s.logprobs or ()))
    if not invalid:
        return []
    averaging = "records" if any(_pass(s) for s in scored) else "items"
    return [Metric("invalid_logprob_count", float(invalid), None, None, len(scored), averaging, variant, None)]


#: results.json's averaging vocabulary (items | subjects | corpus | records, the schema's enum) for
#: the metric modules' descriptive words: a mean over items of the item's accuracy over its
#: permutations is over items; shares over answered (item, permutation) records are over records;
#: ECE's 10 equal-width bins are part of its definition (chimed_eval.metrics.calibration).
AVERAGING = {"items x permutations": "items", "answered items x permutations": "records",
             "items, 10 equal-width bins": "items"}


def _schema_averaging(metrics: Sequence[Metric]) -> list[Metric]:
    return [dataclasses.replace(m, averaging=AVERAGING.get(m.averaging or "", m.averaging)) for m in metrics]


def expanded_figures(scores: Sequence[SampleScore], variant: str, seed: int) -> list[Metric]:
    """The figures beside ``acc`` (see the module docstring): calibration on pass 0, robustness
    over every permutation, avg/maj/pass@K over every repeat; empty when none applies. Averaging
    is named in results.json's vocabulary (:data:`AVERAGING`)."""
    if not scores:
        return []
    out = _calibration_figures([s for s in scores if _pass(s) == 0], variant, seed)
    out += _invalid_logprob_figures(scores, variant)
    shuffled = [s for s in scores if SHUFFLE in s.extra]
    if shuffled:
        from chimed_eval.metrics.robustness import robustness_metrics

        results = _permuted_results(shuffled)
        out += robustness_metrics(results, seed, protocol=shuffle_protocol(variant, results))
    repeated = [s for s in scores if REPEAT in s.extra]
    if repeated:
        out += _repeat_figures(repeated, variant, seed)
    return _schema_averaging(out)
