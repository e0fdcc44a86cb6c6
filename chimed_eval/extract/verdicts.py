"""``--verdict logprobs``: a judge's verdict read from its next-token probabilities (G-Eval).

After G-Eval (Liu et al. 2023, "G-Eval: NLG Evaluation using GPT-4 with Better Human Alignment"):
instead of letting the judge write a verdict and parsing it (``--verdict generate``, :mod:`.parse`),
the judge is shown its own answer format filled in up to the score, and the probabilities of the
possible next tokens are the verdict. So every verdict is readable, and a judge too small to keep
to a format (it rambles) can still be measured for its biases.

Requests (``next_token``, :class:`chimed_eval.core.types.Request`: the backend returns log p of the last
token of each candidate after the context). The context is the judge prompt rendered as the judge
model's chat turn exactly as in generate mode (same chat format, same ``add_special_tokens``),
followed by a fixed assistant prefix:

* pointwise: one request per criterion of the rubric, prefix :data:`POINTWISE_PREFIX`
  (``理由：（略）\\n``) + the criterion's line start (``准确性: ``); candidates ``1``..``5``.
  Criteria are asked independently: each prefix holds only that criterion's line start, never
  the scores of the criteria before it (no criterion's verdict sways another's).
* pairwise: one request per order, prefix :data:`PAIRWISE_PREFIX` (``最终裁决：[[``); candidates
  ``A``, ``B``, ``C`` (C: a tie).

Reading (:func:`distribution`): the candidates' log-probabilities are renormalised over the
candidates, p_i = exp(l_i) / sum_j exp(l_j) (a candidate at -inf has p = 0). The verdict is the
argmax, ties broken toward the first candidate (``1``, ``A``); a pointwise criterion also gets the
probability-weighted expectation sum_i p_i * i (G-Eval's score). A criterion's ``scores`` value is
the argmax (an integer 1-5: Cohen's kappa pools these, as in generate mode); its figure, and the
item's ``overall`` (the mean of the criteria's expectations), use the expectations. Nothing is
invalid in this mode except a reply whose log-probabilities are all -inf or not numbers.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import Request

VERDICTS = ("generate", "logprobs")
VERDICT_LABELS = {"generate": "generate (parsed text)", "logprobs": "logprobs (G-Eval)"}
POINTWISE_PREFIX = "理由：（略）\n"
PAIRWISE_PREFIX = "最终裁决：[["
SCORES = ("1", "2", "3", "4", "5")
WINNERS = ("A", "B", "C")
_WINNER = {"A": "A", "B": "B", "C": "tie"}


def check_verdict(verdict: str, backend: str, prefilled_answers: bool) -> None:
    """ConfigError for an unknown mode, or logprobs on a backend that cannot continue a prefilled
    answer (``prefilled_answers``: its ``Capabilities``, looked up by the caller)."""
    if verdict not in VERDICTS:
        raise ConfigError(f"--verdict {verdict!r}: choose generate or logprobs")
    if verdict == "logprobs" and not prefilled_answers:
        raise ConfigError("--verdict logprobs reads the judge's next-token log-probabilities after a prefilled "
                          f"answer ({POINTWISE_PREFIX.strip()} 准确性: ), which the {backend} backend "
                          f"(--judge-backend {backend}) cannot continue; use --verdict generate, or load the judge "
                          "locally (--judge-backend hf|vllm)")


def criterion_prefix(zh: str) -> str:
    """The assistant prefix of one pointwise criterion: the answer format up to its score."""
    return f"{POINTWISE_PREFIX}{zh}: "


def verdict_requests(key: str, context: str, add_special_tokens: bool | None, protocol: str,
                     rubric: str) -> tuple[tuple[str, str, Request], ...]:
    """(label, prefix, request) per request of one judge prompt: the criterion names (pointwise)
    or ``winner`` (pairwise). ``context`` is the rendered chat turn, ending in the open answer."""
    from chimed_eval.prompts.judge import rubric_criteria

    if protocol == "pairwise":
        return (("winner", PAIRWISE_PREFIX, Request(kind="next_token", key=key, context=context + PAIRWISE_PREFIX,
                                                    continuations=WINNERS, add_special_tokens=add_special_tokens)),)
    out = []
    for c in rubric_criteria(rubric):
        prefix = criterion_prefix(c.zh)
        out.append((c.name, prefix, Request(kind="next_token", key=f"{key}\x00{c.name}", context=context + prefix,
                                            continuations=SCORES, add_special_tokens=add_special_tokens)))
    return tuple(out)


def distribution(logprobs: Sequence[float]) -> list[float] | None:
    """The candidates' probabilities renormalised over the candidates; None when no value is a
    finite number (all -inf, or a NaN anywhere)."""
    if any(isinstance(x, float) and math.isnan(x) for x in logprobs):
        return None
    finite = [x for x in logprobs if math.isfinite(x)]
    if not finite:
        return None
    top = max(finite)
    w = [math.exp(x - top) if math.isfinite(x) else 0.0 for x in logprobs]
    z = sum(w)
    return [x / z for x in w]


def argmax(p: Sequence[float]) -> int:
    """Index of the largest probability, the first one on a tie."""
    return max(range(len(p)), key=lambda i: (p[i], -i))


def expectation(p: Sequence[float]) -> float:
    """sum_i p_i * i over scores 1..len(p)."""
    return sum(pi * i for i, pi in enumerate(p, 1))


def _raw(labels: Sequence[str], logprobs: Sequence[float]) -> dict[str, float | None]:
    return {c: (float(x) if math.isfinite(x) else None) for c, x in zip(labels, logprobs)}


def read_pointwise(logprobs: Mapping[str, Sequence[float]]) -> dict[str, Any]:
    """The pointwise record fields from each criterion's five log-probabilities (module docstring)."""
    scores, expected, probs, problems = {}, {}, {}, []
    for name, lps in logprobs.items():
        p = distribution(lps)
        if p is None:
            problems.append(f"{name}: no finite log-probability")
            continue
        scores[name], expected[name] = argmax(p) + 1, expectation(p)
        probs[name] = dict(zip(SCORES, p))
    raw = {name: _raw(SCORES, lps) for name, lps in logprobs.items()}
    if problems:
        return {"raw": raw, "scores": None, "expected": None, "probs": None, "overall": None, "valid": False,
                "reason": "; ".join(problems)}
    return {"raw": raw, "scores": scores, "expected": expected, "probs": probs,
            "overall": sum(expected.values()) / len(expected), "valid": True, "reason": ""}


def read_pairwise(logprobs: Sequence[float]) -> dict[str, Any]:
    """The pairwise record fields (winner ``A``/``B``/``tie`` in position terms) from the log-probabilities of A, B, C."""
    p = distribution(logprobs)
    raw = _raw(WINNERS, logprobs)
    if p is None:
        return {"raw": raw, "winner": None, "probs": None, "valid": False, "reason": "no finite log-probability"}
    return {"raw": raw, "winner": _WINNER[WINNERS[argmax(p)]], "probs": dict(zip(WINNERS, p)), "valid": True,
            "reason": ""}
