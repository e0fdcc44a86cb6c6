#!/usr/bin/env python
"""The floor: the least a whole command must do to score the same requests, as a script.

It imports torch and transformers only, loads the tokenizer and the fp32 weights, tokenizes each
request's context and options (lm-eval's rule: the option's tokens are those of
``encode(context + option)`` after ``encode(context)``), and runs the forward passes in batches of
``--batch-size``, longest first, right-padded, the output layer only at the scored position, under
``torch.inference_mode()``. With ``--prefix`` the shared prefix of each group of requests (the
tokens all its contexts share) is run once and every batch continues from its key/value cache
(an ``expand()`` view per batch); without it every context runs whole. It writes the options'
log-probabilities (JSON lines, request order) and prints its wall time.

Only one-token options are supported (" A".." D"), which is what the workload uses.

    python benchmarks/bare_forward.py MODEL_DIR requests.jsonl out.jsonl [--prefix] [--batch-size 8]

``requests.jsonl``: one object per line with ``context``, ``prefix`` and ``continuations`` (written
by ``benchmarks/lmeval_parity.py --floor`` from chimed-eval's own rendering of the items).
"""

from __future__ import annotations

import time

T0 = time.time()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402


def shared_len(rows: list[list[int]]) -> int:
    """How many leading tokens all of ``rows`` share (at most the shortest less one)."""
    n = min(len(r) for r in rows) - 1
    first = rows[0]
    for r in rows[1:]:
        k = 0
        while k < n and r[k] == first[k]:
            k += 1
        n = k
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("requests")
    ap.add_argument("out")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--prefix", action="store_true", help="run each group's shared prefix once")
    args = ap.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(args.model_dir)
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=torch.float32, attn_implementation="sdpa").eval()
    decoder, head = model.model, model.get_output_embeddings()
    pad = tok.pad_token_id if tok.pad_token_id is not None else (tok.eos_token_id or 0)
    reqs = [json.loads(x) for x in open(args.requests, encoding="utf-8") if x.strip()]
    ctx_ids, opt_ids = [], []
    for r in reqs:
        c = tok.encode(r["context"])
        ctx_ids.append(c)
        opt_ids.append([tok.encode(r["context"] + o)[len(c)] for o in r["continuations"]])
    groups: dict[str, list[int]] = {}
    for i, r in enumerate(reqs):
        groups.setdefault(r["prefix"] if args.prefix else "", []).append(i)
    out: list[list[float]] = [[] for _ in reqs]
    with torch.inference_mode():
        for members in groups.values():
            p = shared_len([ctx_ids[i] for i in members]) if args.prefix and len(members) > 1 else 0
            kv = decoder(input_ids=torch.tensor([ctx_ids[members[0]][:p]]), use_cache=True).past_key_values if p else None
            order = sorted(members, key=lambda i: -len(ctx_ids[i]))
            for s in range(0, len(order), args.batch_size):
                batch = order[s:s + args.batch_size]
                width = max(len(ctx_ids[i]) - p for i in batch)
                ids = torch.full((len(batch), width), pad, dtype=torch.long)
                for j, i in enumerate(batch):
                    ids[j, : len(ctx_ids[i]) - p] = torch.tensor(ctx_ids[i][p:])
                cache = None
                if kv is not None:
                    from copy import copy

                    cache = copy(kv)
                    cache.layers = []
                    for layer in kv.layers:
                        mine = copy(layer)
                        mine.keys = layer.keys.expand(len(batch), -1, -1, -1)
                        mine.values = layer.values.expand(len(batch), -1, -1, -1)
                        cache.layers.append(mine)
                hidden = decoder(input_ids=ids, past_key_values=cache, use_cache=cache is not None).last_hidden_state
                last = torch.tensor([len(ctx_ids[i]) - p - 1 for i in batch])
                logp = torch.log_softmax(head(hidden[torch.arange(len(batch)), last]).float(), -1)
                for j, i in enumerate(batch):
                    out[i] = [float(logp[j, t]) for t in opt_ids[i]]
    with open(args.out, "w", encoding="utf-8") as f:
        for lls in out:
            f.write(json.dumps(lls) + "\n")
    print(f"bare forward: {len(reqs)} requests, {time.time() - T0:.1f} s from the script's start")
    return 0


if __name__ == "__main__":
    sys.exit(main())
