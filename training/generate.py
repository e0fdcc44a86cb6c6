"""Generation for the training stages, through the evaluation package's backends (``hf``,
``vllm`` once registered, ...) selected by name from the same registry ``chimed-eval run`` uses:
no second generation loop. Responses go through the evaluation response cache, so a sample
requested twice (same model weights, prompt, decoding and seed) is computed once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from chimed_eval.prompts.variants import CHIMED
from chimed_eval.core.types import GenerationConfig, Request

#: the evaluation's stop strings for the paper format: the next ``[human]:`` or ``[bot]:`` turn
PAPER_STOP = CHIMED.stop


@dataclass
class Decoding:
    """``temperature`` 0 is greedy; the authors' sampling is temperature 1.0, top_p 0.85."""

    max_new_tokens: int = 64
    temperature: float = 1.0
    top_p: float = 0.85
    batch_size: int = 8


def sample_answers(backend, prompts: Sequence[tuple[str, str]], n: int, decoding: Decoding, seed: int,
                   stop: tuple[str, ...] = PAPER_STOP) -> dict[str, list[str]]:
    """``n`` answers per (id, context). Sample j of item i has the seed ``item_seed(seed,
    f"{i}#{j}")`` (the runner's per-item seeds), so it is the same whoever asks for it."""
    from chimed_eval.engine.runner import item_seed

    reqs = []
    for pid, ctx in prompts:
        for j in range(n):
            key = f"{pid}#{j}"
            # Sampled requests run one at a time in the hf backend, where transformers' stop-string
            # criterion was rebuilt per call (measured: 17 s instead of 2.9 s for 64 tokens of
            # SmolLM2-135M on 2 cores, before 70855bc); they stop at EOS and are cut here.
            g = GenerationConfig(max_new_tokens=decoding.max_new_tokens, stop=stop if decoding.temperature <= 0 else (),
                                 temperature=decoding.temperature,
                                 top_p=decoding.top_p, seed=item_seed(seed, key) if decoding.temperature > 0 else None)
            reqs.append(Request(kind="generate", key=key, context=ctx, generation=g))
    out: dict[str, list[str]] = {pid: [] for pid, _ in prompts}
    # A backend that batches internally (vllm: the whole list in one engine call) says how many
    # requests to hand it at once, as it does to the evaluation runner.
    bs = max(1, decoding.batch_size, int(getattr(backend, "run_batch_size", None) or 0))
    from chimed_eval.core.progress import progress_bar

    with progress_bar(len(reqs), f"sampling ({len(prompts)} prompts x {n})", "answer") as bar:
        for i in range(0, len(reqs), bs):
            for r in backend.run("generate", reqs[i: i + bs]):
                text = r.text or ""
                for st in stop:
                    text = text.split(st, 1)[0]
                out[r.key.rsplit("#", 1)[0]].append(text.strip())
                bar.update()
    return out


def generate_answers(model: str, prompts: Sequence[tuple[str, str]], n: int, decoding: Decoding, seed: int,
                     backend: str = "hf", cache: str | Path | None = None) -> dict[str, list[str]]:
    from chimed_eval.backends import open_backend

    b = open_backend(backend, model, seed=seed, batch_size=decoding.batch_size, cache=cache)
    try:
        return sample_answers(b, prompts, n, decoding, seed)
    finally:
        b.close()
