"""Does a reward model tell the reference from the policy's own sample when both are equally long?

    python examples/reward_length_check.py RUN_DIR [REWARD_MODEL ...]

For the first 24 CMD ``heldout`` prompts: the reference against the SFT policy's sample
(``RUN_DIR/sft``, seed 1234, temperature 1, top_p 0.85, as the reward stage's ``heldout_hard``),
with samples of 32 and of 128 new tokens. Prints held-out pair accuracy with its Wilson interval
for each reward model (default: ``RUN_DIR/reward`` and ``RUN_DIR/judge``). Samples come through
the vLLM backend and the response cache, so the reward stage's own samples are reused."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from chimed_eval.training.config import Source, TrainSettings
from chimed_eval.training.data import load_source
from chimed_eval.training.generate import Decoding, generate_answers
from chimed_eval.training.measure import pair_accuracy
from chimed_eval.training.rejection import context, score_answers


def main() -> None:
    run = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/train-proof")
    models = sys.argv[2:] or [str(run / "reward"), str(run / "judge")]
    items = [p for p in load_source(Source(builtin="cmd-qa", split="heldout", limit=24), "prompts") if p.reference]
    out = {}
    print("| reward model | sample tokens | accuracy (reference preferred) | Wilson 95% |")
    print("|---|---|---|---|")
    for tokens in (32, 128):
        gens = generate_answers(str(run / "sft"), [(p.id, context(p)) for p in items], 1, Decoding(max_new_tokens=tokens),
                                1234, backend="vllm")
        for rm in models:
            settings = TrainSettings(batch_size=8, max_length=128)
            chosen = score_answers(rm, [(p.prompt, p.reference) for p in items], settings)
            rejected = score_answers(rm, [(p.prompt, gens[p.id][0]) for p in items], settings)
            acc = pair_accuracy(chosen, rejected, 0)
            out[f"{rm}@{tokens}"] = acc
            lo, hi = acc["wilson"]
            print(f"| {rm} | {tokens} | {acc['value']:.3f} (n={acc['n']}) | [{lo:.3f}, {hi:.3f}] |", flush=True)
    (run / "reward_length_check.json").write_text(json.dumps(out, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
