"""Evaluate a finished rejection stage again with other evaluation settings (longer answers, more
prompts, another judge), without selecting or training again: the policy and the result sample on
the held-out prompts, are judged, and BLEU is computed, as the stage's own ``evaluate`` does.

    python examples/rejection_reeval.py --config examples/train_regime.yaml OUT.json \\
        --set rejection.evaluate.decoding.max_new_tokens=384

Why: at 128 new tokens (about 65 characters against references of about 160) the paper BLEU's
brevity penalty is set by the token cap, not by the answers; with room for answers as long as the
references, BLEU measures their n-grams."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from chimed_eval.training.config import apply_overrides, load_yaml
from chimed_eval.training.data import load_source
from chimed_eval.training.full import plan
from chimed_eval.training.rejection import evaluate_rejection


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("output")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    a = ap.parse_args()
    data = apply_overrides(load_yaml(a.config), a.overrides)
    cfg = plan(data)["rejection"]
    prompts = [p for s in cfg.prompts for p in load_source(s, "prompts")]
    ev = evaluate_rejection(cfg, cfg.policy, cfg.output_dir, prompts)
    Path(a.output).write_text(json.dumps(ev, ensure_ascii=False, indent=1), encoding="utf-8")
    for name in ("judge", "selector"):
        if name in ev:
            d, w = ev[name]["delta"], ev[name]["win_rate"]
            print(f"{name}: after - before {d['value']:.3f} [{d['ci_low']:.3f}, {d['ci_high']:.3f}]; win rate "
                  f"{w['value']:.3f} [{w['ci_low']:.3f}, {w['ci_high']:.3f}] (n={d['n']})")
    if "bleu" in ev:
        for k in ("bleu1", "bleu2"):
            d = ev["bleu"]["delta"][k]
            print(f"{k}: {ev['bleu']['before'][k]['value']:.2f} -> {ev['bleu']['after'][k]['value']:.2f}, "
                  f"after - before {d['value']:.2f} [{d['ci_low']:.2f}, {d['ci_high']:.2f}]")
        pb, pa = ev["bleu"]["before"].get("parts"), ev["bleu"]["after"].get("parts")
        if pb and pa:
            print("parts: " + ", ".join(f"{k} {pb[k]:.3f} -> {pa[k]:.3f}" for k in pb))
    print(f"answer characters: {ev['answer_chars']['before']:.1f} -> {ev['answer_chars']['after']:.1f}")


if __name__ == "__main__":
    main()
