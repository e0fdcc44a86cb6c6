"""Hugging Face transformers backend (CPU or GPU; fp32, bf16, fp16).

Scoring reads only the positions it needs: the decoder runs once per distinct input row, and the
output layer (the vocabulary projection, the most expensive single matmul for 262k-vocabulary
models) is applied only at the positions whose log-probabilities are read. Options that share a
context and are one token long (" A", " B", ...) share one row.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Sequence

from ..models import ResolvedModel
from ..types import ModelInfo, Request, Response
from .base import Backend

log = logging.getLogger(__name__)

DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16", "auto": "auto"}


@dataclass
class _Row:
    """One decoder input and the (position, token) pairs to read from it."""

    tokens: tuple[int, ...]
    reads: list[tuple[int, int]]


def _as_bool(v: Any) -> bool:
    return v if isinstance(v, bool) else str(v).lower() in ("1", "true", "yes", "on")


class HFBackend(Backend):
    name = "hf"

    def __init__(self, model: ResolvedModel, device: str | None = None, dtype: str | None = None,
                 batch_size: int = 8, seed: int = 0, model_args: dict[str, str] | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        args = dict(model_args or {})
        self.torch = torch
        self.resolved = model
        self.batch_size = max(1, int(batch_size))
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dt = DTYPES.get((dtype or model.dtype or "float32").lower())
        if dt is None:
            raise ValueError(f"unknown dtype {dtype!r}; choose from {sorted(DTYPES)}")
        self.dtype_name = dt
        torch_dtype = "auto" if dt == "auto" else getattr(torch, dt)
        trust = _as_bool(args.pop("trust_remote_code", model.trust_remote_code))
        attn = args.pop("attn_implementation", None) or _default_attention()
        common = dict(revision=model.revision, trust_remote_code=trust)
        self.tokenizer = AutoTokenizer.from_pretrained(model.tokenizer_path or model.path, **common)
        self.model = AutoModelForCausalLM.from_pretrained(
            model.path, dtype=torch_dtype, attn_implementation=attn, **common, **args
        ).to(self.device)
        self.model.eval()
        torch.manual_seed(seed)
        cfg = self.model.config
        self.max_length = int(getattr(cfg, "max_position_embeddings", 0) or getattr(self.tokenizer, "model_max_length", 2048))
        self.max_length = min(self.max_length, 1 << 20)
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        self._decoder = getattr(self.model, getattr(self.model, "base_model_prefix", "model"), None)
        self._head = self.model.get_output_embeddings()
        self._enc_cache: dict[tuple[str, bool | None], list[int]] = {}
        self._partial_ok = self._check_partial_head()

    # ------------------------------------------------------------------ info
    def model_info(self) -> ModelInfo:
        return ModelInfo(name=self.resolved.name, path=self.resolved.path, revision=self.resolved.revision,
                         weights_sha256=self.resolved.weights_sha256, dtype=self.dtype_name)

    # -------------------------------------------------------------- encoding
    def encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        key = (text, add_special_tokens)
        if key not in self._enc_cache:
            kw = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
            self._enc_cache[key] = list(self.tokenizer.encode(text, **kw))
        return self._enc_cache[key]

    def _empty_context(self) -> list[int]:
        tid = self.tokenizer.bos_token_id
        return [tid if tid is not None else self.tokenizer.eos_token_id]

    def encode_pair(self, context: str, continuation: str, add_special_tokens: bool | None) -> tuple[list[int], list[int]]:
        """lm-evaluation-harness semantics: trailing spaces of the context move to the
        continuation; the continuation's tokens are those of encode(context + continuation)
        after the first len(encode(context)) tokens."""
        if not context:
            return self._empty_context(), self.encode(continuation, False)
        n = len(context) - len(context.rstrip())
        if n:
            context, continuation = context[:-n], context[-n:] + continuation
        whole = self.encode(context + continuation, add_special_tokens)
        ctx = self.encode(context, add_special_tokens)
        return ctx, whole[len(ctx):]

    def request_length(self, request: Request) -> int:
        if request.kind == "loglikelihood":
            return max(sum(map(len, self.encode_pair(request.context, c, request.add_special_tokens)))
                       for c in request.continuations)
        return len(self.encode(request.context, True if request.add_special_tokens is None and request.kind == "next_token" else request.add_special_tokens))

    def _rows_loglikelihood(self, r: Request) -> tuple[list[_Row], list[list[tuple[int, int, int]]]]:
        """Rows for a request and, per continuation, (row index, read index...) to sum."""
        rows: list[_Row] = []
        index: dict[tuple[int, ...], int] = {}
        per_cont: list[list[tuple[int, int, int]]] = []
        for cont in r.continuations:
            ctx, cenc = self.encode_pair(r.context, cont, r.add_special_tokens)
            if not cenc:
                raise ValueError(f"request {r.key}: continuation {cont!r} encodes to no tokens")
            full = (ctx + cenc)[-(self.max_length + 1):]
            inp = tuple(full[:-1])
            if inp not in index:
                index[inp] = len(rows)
                rows.append(_Row(inp, []))
            row = rows[index[inp]]
            start = len(inp) - len(cenc)
            spots = []
            for j, tok in enumerate(cenc):
                row.reads.append((start + j, tok))
                spots.append((index[inp], len(row.reads) - 1, tok))
            per_cont.append(spots)
        return rows, per_cont

    def _rows_next_token(self, r: Request) -> tuple[list[_Row], list[list[tuple[int, int, int]]]]:
        special = True if r.add_special_tokens is None else r.add_special_tokens
        ids = tuple(self.encode(r.context, special)[-self.max_length:])
        row = _Row(ids, [])
        per_cont = []
        for cand in r.continuations:
            tok = self.encode(cand, True)[-1]  # the last token of tokenizer.encode(letter)
            row.reads.append((len(ids) - 1, tok))
            per_cont.append([(0, len(row.reads) - 1, tok)])
        return [row], per_cont

    # --------------------------------------------------------------- scoring
    def loglikelihood(self, requests: Sequence[Request]) -> list[Response]:
        return self._score(requests, self._rows_loglikelihood)

    def next_token(self, requests: Sequence[Request]) -> list[Response]:
        return self._score(requests, self._rows_next_token)

    def _score(self, requests: Sequence[Request], make_rows) -> list[Response]:
        plans = [make_rows(r) for r in requests]
        flat: list[_Row] = [row for rows, _ in plans for row in rows]
        results = self._forward_reads(flat)  # per row: list of (logprob, is_greedy)
        out, k = [], 0
        for r, (rows, per_cont) in zip(requests, plans):
            mine = results[k:k + len(rows)]
            k += len(rows)
            lps, greedy, ntok = [], [], []
            for spots in per_cont:
                vals = [mine[ri][j] for ri, j, _ in spots]
                lps.append(float(sum(v[0] for v in vals)))
                greedy.append(all(v[1] for v in vals))
                ntok.append(len(spots))
            out.append(Response(key=r.key, logprobs=tuple(lps), greedy=tuple(greedy), n_tokens=tuple(ntok)))
        return out

    def _forward_reads(self, rows: list[_Row]) -> list[list[tuple[float, bool]]]:
        """Run rows in one right-padded forward and read log-probs only at requested positions."""
        torch = self.torch
        out: list[list[tuple[float, bool]]] = []
        if not rows:
            return out
        width = max(len(r.tokens) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        for i, r in enumerate(rows):
            ids[i, : len(r.tokens)] = torch.tensor(r.tokens, dtype=torch.long)
        b_idx = [i for i, r in enumerate(rows) for _ in r.reads]
        p_idx = [p for r in rows for p, _ in r.reads]
        t_idx = [t for r in rows for _, t in r.reads]
        with torch.inference_mode():
            logits = self._logits_at(ids.to(self.device), torch.tensor(b_idx), torch.tensor(p_idx))
            logp = torch.log_softmax(logits.float(), dim=-1)
            tok = torch.tensor(t_idx, device=logp.device)
            picked = logp.gather(1, tok[:, None])[:, 0].tolist()
            greedy = (logp.argmax(dim=-1) == tok).tolist()
        k = 0
        for r in rows:
            out.append(list(zip(picked[k:k + len(r.reads)], greedy[k:k + len(r.reads)])))
            k += len(r.reads)
        return out

    def _logits_at(self, ids, b_idx, p_idx):
        """Logits at (row, position) pairs. The decoder's hidden states are gathered first and
        only those go through the output layer; models whose head needs more (soft-capping,
        scaling) are detected at load time and use the full forward instead."""
        # Rows are right-padded and attention is causal, so no real position ever attends to a
        # pad: the mask can be dropped, which lets SDPA take its fast causal path (positions are
        # 0..L-1 either way). The result at every position we read is unchanged.
        if self._partial_ok:
            hidden = self._decoder(input_ids=ids).last_hidden_state
            h = hidden[b_idx.to(hidden.device), p_idx.to(hidden.device)]
            return self._head(h)
        logits = self.model(input_ids=ids).logits
        return logits[b_idx.to(logits.device), p_idx.to(logits.device)]

    def _check_partial_head(self) -> bool:
        """Verify once that decoder + output layer reproduces the model's own logits."""
        torch = self.torch
        if self._decoder is None or self._head is None:
            return False
        ids = torch.tensor([self.encode("检查 check 123", False)[:8] or [0]], device=self.device)
        mask = torch.ones_like(ids)
        try:
            with torch.inference_mode():
                full = self.model(input_ids=ids, attention_mask=mask).logits[0, -1].float()
                part = self._head(self._decoder(input_ids=ids, attention_mask=mask).last_hidden_state[0, -1]).float()
        except Exception as exc:  # noqa: BLE001 - any architecture surprise means: use the safe path
            log.info("partial output layer unavailable (%s); using full logits", exc)
            return False
        tol = 1e-3 if self.dtype_name == "float32" else 5e-2
        ok = bool(torch.allclose(full, part, atol=tol, rtol=0))
        if not ok:
            log.info("decoder+head differs from model logits; using full logits")
        return ok

    # ------------------------------------------------------------ generation
    def generate(self, requests: Sequence[Request]) -> list[Response]:
        torch = self.torch
        greedy = [r for r in requests if r.generation is None or r.generation.greedy]
        sampled = [r for r in requests if r.generation is not None and not r.generation.greedy]
        texts: dict[str, str] = {}
        if greedy:
            texts.update(self._generate_batch(greedy, sample=False))
        for r in sampled:  # per-item seeds make sampled items reproducible whatever the batch
            torch.manual_seed(int(r.generation.seed or 0))  # type: ignore[union-attr]
            texts.update(self._generate_batch([r], sample=True))
        return [Response(key=r.key, text=texts[r.key]) for r in requests]

    def _generate_batch(self, requests: Sequence[Request], sample: bool) -> dict[str, str]:
        torch = self.torch
        g = requests[0].generation
        max_new = max((r.generation.max_new_tokens if r.generation else 256) for r in requests)
        encs = [self.encode(r.context, r.add_special_tokens)[-(self.max_length - max_new):] for r in requests]
        width = max(len(e) for e in encs)
        ids = torch.full((len(encs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, e in enumerate(encs):  # left padding
            ids[i, width - len(e):] = torch.tensor(e, dtype=torch.long)
            mask[i, width - len(e):] = 1
        stops = sorted({s for r in requests for s in (r.generation.stop if r.generation else ())})
        kw: dict[str, Any] = dict(max_new_tokens=max_new, pad_token_id=self.pad_id, do_sample=sample)
        if sample and g is not None:
            kw.update(temperature=g.temperature, top_p=g.top_p)
        else:
            kw.update(temperature=None, top_p=None, top_k=None)
        if stops:
            kw.update(stop_strings=stops, tokenizer=self.tokenizer)
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), **kw)
        res = {}
        for i, r in enumerate(requests):
            text = self.tokenizer.decode(out[i, width:], skip_special_tokens=True)
            for s in (r.generation.stop if r.generation else ()):
                if s in text:
                    text = text[: text.index(s)]
            res[r.key] = text
        return res

    def close(self) -> None:
        del self.model


def _default_attention() -> str:
    try:
        import flash_attn  # noqa: F401

        import torch

        if torch.cuda.is_available():
            return "flash_attention_2"
    except ImportError:
        pass
    return "sdpa"
