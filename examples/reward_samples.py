"""Draw the reward stages' hard-pair samples (the SFT policy's answers) ahead of training, one
engine at a time, so that ``chimed-train reward`` and ``chimed-train judge`` can then train side by
side without starting two vLLM engines on the same cores: the stages read the samples back from the
response cache (same model, prompts, decoding and seeds).

    python examples/reward_samples.py --config examples/train_regime.yaml [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse

from chimed_eval.training.config import apply_overrides, load_yaml
from chimed_eval.training.full import done_report, plan
from chimed_eval.training.reward import hard_pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    a = ap.parse_args()
    data = apply_overrides(load_yaml(a.config), a.overrides)
    stages = plan(data)
    for name in ("reward", "judge"):
        cfg = stages.get(name)
        if cfg is None or (data.get("skip_done") and done_report(name, cfg) is not None):
            continue
        for h in (cfg.hard_negatives, cfg.heldout_hard):
            pairs = hard_pairs(h, cfg.model)
            if pairs:
                print(f"[samples] {name}: {len(pairs)} answers from {h.model or cfg.model} for {h.source.label()}", flush=True)


if __name__ == "__main__":
    main()
