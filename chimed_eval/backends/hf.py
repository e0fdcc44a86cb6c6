"""Hugging Face transformers backend (CPU or GPU; fp32, bf16, fp16).

Scoring reads only the positions it needs: the decoder runs once per distinct input row, and the
output layer (the vocabulary projection, the most expensive single matmul for 262k-vocabulary
models) is applied only at the positions whose log-probabilities are read. Options that share a
context and are one token long (" A", " B", ...) share one row.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from chimed_eval.core.capabilities import Capabilities
from chimed_eval.core.progress import library_bars
from chimed_eval.models.resolve import ResolvedModel
from chimed_eval.core.types import ModelInfo, Request, Response, Usage
from chimed_eval.backends import packed_attention, prefix_attention
from chimed_eval.backends import hf_checks
from chimed_eval.backends.prefix_kv import PrefixKV, Row as _Row
from chimed_eval.backends.tokens import TokenizedBackend, as_bool, decode_complete  # noqa: F401 (vllm imports it here)

log = logging.getLogger(__name__)

DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16", "auto": "auto"}


class HFBackend(TokenizedBackend):
    name = "hf"
    #: exact log-probabilities of every kind, the vocabulary moments from the full output layer
    capabilities = Capabilities(letter_logprobs=True, prompt_logprobs=True, token_logprobs=True, vocabulary_moments=True,
                                prefilled_answers=True, chat_template=True, local_weights=True)
    #: its own options, then the ``from_pretrained`` loading options it passes on as given
    accepted_args = frozenset({"trust_remote_code", "attn_implementation", "prefix_cache", "prefix_attention", "packed",
                               "min_prefix_tokens", "revision", "chat_format", "device_map", "low_cpu_mem_usage", "use_safetensors", "variant", "subfolder",
                               "cache_dir", "local_files_only", "offload_folder", "load_in_8bit", "load_in_4bit",
                               "code_revision", "hub"})
    requires = ("torch", "transformers")
    install_hint = 'pip install "chimed-eval[hf]"'

    def __init__(self, model: ResolvedModel, device: str | None = None, dtype: str | None = None,
                 batch_size: int = 8, seed: int = 0, model_args: dict[str, str] | None = None,
                 loaded: tuple[Any, Any] | None = None) -> None:
        """``loaded``: a transformers model and its tokenizer the caller has already loaded
        (``chimed_eval.evaluate(model=(model, tokenizer))``): used as they are, on their own
        device and dtype, nothing read from ``model.path``."""
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        args = dict(model_args or {})
        self.torch = torch
        self.resolved = model
        self.batch_size = max(1, int(batch_size))
        use_prefix_cache = as_bool(args.pop("prefix_cache", True))  # few-shot prefix KV reuse
        use_split = as_bool(args.pop("prefix_attention", True))  # its unmasked split attention on CPU
        self._use_packed = as_bool(args.pop("packed", True))  # rows packed without padding on CPU
        min_prefix = int(args.pop("min_prefix_tokens", 16))
        if loaded is not None:
            self.model, self.tokenizer = loaded
            self.device = str(self.model.device)
            self.dtype_name = str(self.model.dtype).removeprefix("torch.")
            self._setup(torch, seed, use_prefix_cache, min_prefix, use_split)
            return
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dt = DTYPES.get((dtype or model.dtype or "float32").lower())
        if dt is None:
            raise ValueError(f"unknown dtype {dtype!r}; choose from {sorted(DTYPES)}")
        self.dtype_name = dt
        torch_dtype = "auto" if dt == "auto" else getattr(torch, dt)
        trust = as_bool(args.pop("trust_remote_code", model.trust_remote_code))
        attn = args.pop("attn_implementation", None) or _default_attention()
        common = dict(revision=model.revision, trust_remote_code=trust)
        with library_bars():  # transformers' loading bar follows --no-progress
            self.tokenizer = AutoTokenizer.from_pretrained(model.tokenizer_path or model.path, **common)
            self.model = AutoModelForCausalLM.from_pretrained(
                model.path, dtype=torch_dtype, attn_implementation=attn, **common, **args
            ).to(self.device)
        self._setup(torch, seed, use_prefix_cache, min_prefix, use_split)

    def _setup(self, torch: Any, seed: int, use_prefix_cache: bool, min_prefix: int, use_split: bool) -> None:
        """What the backend derives from its model and tokenizer, however they were loaded."""
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
        eos = self.model.generation_config.eos_token_id if self.model.generation_config is not None else None
        eos = eos if isinstance(eos, list) else [eos]
        self._end_ids = {t for t in [*eos, self.tokenizer.eos_token_id, self.pad_id] if t is not None}
        self._enc_cache: dict[tuple[str, bool | None], list[int]] = {}
        self._stop_cache: dict[tuple[str, ...], Any] = {}  # stop strings -> transformers criterion
        self._partial_ok = self._check_partial_head()
        self._prefix_kv = PrefixKV(self._compute_prefix)
        self.min_prefix_tokens = min_prefix
        self._split: bool = False  # the prefix-split attention (prefix_attention.py), once verified
        self._packed: bool = False  # rows packed end to end (packed_attention.py), once verified
        self.prefix_cache = use_prefix_cache and self._check_prefix_cache()
        if self.prefix_cache and use_split and prefix_attention.offered(self):
            self._split = True  # checked the same way, on its own path
            self._split = self._check_prefix_cache()
        if getattr(self, "_use_packed", True) and packed_attention.offered(self):
            self._packed = self._check_packed()

    # ------------------------------------------------------------------ info
    def model_info(self) -> ModelInfo:
        return ModelInfo(name=self.resolved.name, path=self.resolved.path, revision=self.resolved.revision,
                         weights_sha256=self.resolved.weights_sha256, dtype=self.dtype_name)

    def _rows_loglikelihood(self, r: Request) -> tuple[list[_Row], list[list[tuple[int, int, int]]]]:
        """Rows for a request and, per continuation, (row index, read index...) to sum."""
        rows: list[_Row] = []
        index: dict[tuple[int, ...], int] = {}
        per_cont: list[list[tuple[int, int, int]]] = []
        for full, cenc in self.continuation_tokens(r):
            inp = tuple(full[:-1])
            if inp not in index:
                index[inp] = len(rows)
                rows.append(_Row(inp, [], self._prefix_len(r, inp, len(inp) - len(cenc))))
            row = rows[index[inp]]
            start = len(inp) - len(cenc)
            spots = []
            for j, tok in enumerate(cenc):
                row.reads.append((start + j, tok))
                spots.append((index[inp], len(row.reads) - 1, tok))
            per_cont.append(spots)
        return rows, per_cont

    def _rows_next_token(self, r: Request) -> tuple[list[_Row], list[list[tuple[int, int, int]]]]:
        ctx, cands = self.next_token_ids(r)
        ids = tuple(ctx)
        row = _Row(ids, [], self._prefix_len(r, ids, len(ids) - 1))
        per_cont = []
        for tok in cands:
            row.reads.append((len(ids) - 1, tok))
            per_cont.append([(0, len(row.reads) - 1, tok)])
        return [row], per_cont

    # --------------------------------------------------------------- scoring
    def loglikelihood(self, requests: Sequence[Request]) -> list[Response]:
        return self._score(requests, self._rows_loglikelihood)

    def next_token(self, requests: Sequence[Request]) -> list[Response]:
        return self._score(requests, self._rows_next_token)

    def token_logprobs(self, requests: Sequence[Request]) -> list[Response]:
        """Exact per-token log-probabilities and vocabulary moments (:mod:`.token_scores`)."""
        from chimed_eval.backends.token_scores import hf_token_logprobs

        return hf_token_logprobs(self, requests)

    def request_length(self, request: Request) -> int:
        if request.kind == "token_logprobs":  # the text's tokens, not the (usually empty) context's
            from chimed_eval.backends.token_scores import token_row

            return len(token_row(self, request)[0])
        return super().request_length(request)

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
            out.append(Response(key=r.key, logprobs=tuple(lps), greedy=tuple(greedy), n_tokens=tuple(ntok),
                                usage=Usage(prompt_tokens=sum(len(row.tokens) for row in rows), completion_tokens=0,
                                            tokens_source="tokenizer")))
        return out

    def _prefix_len(self, r: Request, tokens: Sequence[int], first_read: int) -> int:
        """How many leading tokens of ``tokens`` (the full context's own tokens) to take from the
        prefix KV cache: the longest run they share with the encoding of ``r.prefix``. A BPE merge
        across the prefix boundary (``"\n\n"`` + text) only shortens that run, so what is scored
        is always the full context's tokenization. 0 when disabled or too short to pay off."""
        if not (self.prefix_cache and r.prefix):
            return 0
        n = min(self.prefix_overlap(r, tokens), first_read)  # the first position read must be computed, not cached
        return n if n >= self.min_prefix_tokens else 0

    def _forward_reads(self, rows: list[_Row]) -> list[list[tuple[float, bool]]]:
        """Log-probs (and greediness) at the requested (position, token) pairs of every row.

        Rows that share a cached prefix run as one batch on top of that prefix's KV cache; the
        others run as one right-padded batch.
        """
        out: list[list[tuple[float, bool]] | None] = [None] * len(rows)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, r in enumerate(rows):
            groups.setdefault(tuple(r.tokens[: r.prefix_len]), []).append(i)
        for prefix, members in groups.items():
            for i, res in zip(members, self._forward_group([rows[i] for i in members], prefix)):
                out[i] = res
        return out  # type: ignore[return-value]

    def _forward_group(self, rows: list[_Row], prefix: tuple[int, ...]) -> list[list[tuple[float, bool]]]:
        torch = self.torch
        p = len(prefix)
        width = max(len(r.tokens) - p for r in rows)
        # each distinct (row, position) goes through the output layer once: the options " A".." D"
        # of a context are four reads of one position
        spot: dict[tuple[int, int], int] = {}
        which = [spot.setdefault((i, pos - p), len(spot)) for i, r in enumerate(rows) for pos, _ in r.reads]
        t_idx = [t for r in rows for _, t in r.reads]
        with torch.inference_mode():
            if self._packed and packed_attention.fits(self._decoder.config, p, width):
                kv = self._prefix_kv.split_kv(prefix, self._n_heads()) if p else None
                hidden = packed_attention.packed_hidden(self._decoder, [r.tokens[p:] for r in rows], p, list(spot), kv)
                logits = self._head(hidden)
            else:
                ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
                for i, r in enumerate(rows):
                    ids[i, : len(r.tokens) - p] = torch.tensor(r.tokens[p:], dtype=torch.long)
                cache = self._repeated_cache(prefix, len(rows)) if p and not self._split else None
                split = self._prefix_kv.split_kv(prefix, self._n_heads()) if p and self._split else None
                b_idx = torch.tensor([i for i, _ in spot], dtype=torch.long)
                p_idx = torch.tensor([q for _, q in spot], dtype=torch.long)
                logits = self._logits_at(ids.to(self.device), b_idx, p_idx, cache, split, p)
            logp = torch.log_softmax(logits.float(), dim=-1)
            at = torch.tensor(which, device=logp.device)
            tok = torch.tensor(t_idx, device=logp.device)
            picked = logp[at, tok].tolist()
            greedy = (logp.argmax(dim=-1)[at] == tok).tolist()
        res, k = [], 0
        for r in rows:
            res.append(list(zip(picked[k:k + len(r.reads)], greedy[k:k + len(r.reads)])))
            k += len(r.reads)
        return res

    def _compute_prefix(self, prefix: tuple[int, ...]) -> Any:
        """The keys and values of ``prefix`` (one row), for :class:`PrefixKV` to keep."""
        with self.torch.inference_mode():
            ids = self.torch.tensor([prefix], device=self.device)
            return self._decoder(input_ids=ids, use_cache=True).past_key_values

    def _repeated_cache(self, prefix: tuple[int, ...], n: int):
        """The prefix's KV cache (computed once per prefix) for a forward pass of ``n`` rows."""
        return self._prefix_kv.for_rows(prefix, n)

    def _n_heads(self) -> int:
        return int(self._decoder.config.num_attention_heads)

    def _logits_at(self, ids, b_idx, p_idx, cache=None, split=None, offset: int = 0):
        """Logits at (row, position) pairs. The decoder's hidden states are gathered first and
        only those go through the output layer; models whose head needs more (soft-capping,
        scaling) are detected at load time and use the full forward instead."""
        # Rows are right-padded and attention is causal, so no real position ever attends to a
        # pad: the mask can be dropped, which lets SDPA take its fast causal path (positions
        # continue from the cached prefix, 0..L-1 without one). Every position read is unchanged.
        kw = {} if cache is None else {"past_key_values": cache, "use_cache": True}
        if split is not None:  # on top of the prefix through prefix_attention (verified at load)
            pos = self.torch.arange(offset, offset + ids.shape[1], device=ids.device)[None].expand(ids.shape[0], -1)
            with prefix_attention.using(self._decoder.config):
                hidden = self._decoder(input_ids=ids, position_ids=pos, chimed_prefix=split).last_hidden_state
            return self._head(hidden[b_idx.to(hidden.device), p_idx.to(hidden.device)])
        if self._partial_ok:
            hidden = self._decoder(input_ids=ids, **kw).last_hidden_state
            h = hidden[b_idx.to(hidden.device), p_idx.to(hidden.device)]
            return self._head(h)
        logits = self.model(input_ids=ids, **kw).logits
        return logits[b_idx.to(logits.device), p_idx.to(logits.device)]

    # ------------------------------------------------------- load-time checks (hf_checks.py)
    def _check_partial_head(self) -> bool:
        return hf_checks.check_partial_head(self)

    def _check_prefix_cache(self) -> bool:
        return hf_checks.check_prefix_cache(self)

    def _check_packed(self) -> bool:
        return hf_checks.check_packed(self)

    def choose_batch_size(self, kind: str, requests: Sequence[Request]) -> int:
        """``--batch-size auto`` (:mod:`chimed_eval.backends.batching`): on a GPU the largest size
        from 64 down (halving on out-of-memory) that runs ``requests[:size]``, the longest first;
        on a CPU the default 8."""
        from chimed_eval.backends.batching import AUTO_START, CPU_AUTO_BATCH, find_batch_size

        torch = self.torch
        if not str(self.device).startswith("cuda") or not requests:
            return CPU_AUTO_BATCH
        oom = getattr(torch.cuda, "OutOfMemoryError", RuntimeError)
        return find_batch_size(lambda n: self.run(kind, list(requests[:n])), min(AUTO_START, len(requests)),
                               is_oom=lambda e: isinstance(e, oom) or "out of memory" in str(e),
                               after_oom=torch.cuda.empty_cache)

    # ------------------------------------------------------------ generation
    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """Greedy requests without a usable shared prefix run as one left-padded batch. A request
        whose few-shot prefix is cached, or that samples (its seed is per item, so the text must
        not depend on the batch), runs on its own on top of the prefix's KV cache."""
        torch = self.torch
        texts: dict[str, tuple[str, int]] = {}
        batch, single = [], []
        for r in requests:
            sampled = r.generation is not None and not r.generation.greedy
            (single if sampled or self._gen_prefix_len(r) else batch).append(r)
        if batch:
            texts.update(self._generate_batch(batch))
        for r in single:
            if r.generation is not None and not r.generation.greedy:
                torch.manual_seed(int(r.generation.seed or 0))
            texts.update(self._generate_batch([r], prefix_len=self._gen_prefix_len(r)))
        return [Response(key=r.key, text=texts[r.key][0], n_tokens=(texts[r.key][1],),
                         usage=Usage(prompt_tokens=len(self.generation_ids(r)), completion_tokens=texts[r.key][1],
                                     tokens_source="tokenizer"))
                for r in requests]

    def _gen_prefix_len(self, r: Request) -> int:
        ids = self.generation_ids(r)
        return self._prefix_len(r, ids, len(ids) - 1)

    def _generate_batch(self, requests: Sequence[Request], prefix_len: int = 0) -> dict[str, tuple[str, int]]:
        """Texts (cut at the first stop string) and generated token counts, by request key."""
        torch = self.torch
        g = requests[0].generation
        sample = g is not None and not g.greedy
        max_new = max((r.generation.max_new_tokens if r.generation else 256) for r in requests)
        encs = [self.generation_ids(r) for r in requests]
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
            if g.top_k is not None:  # --gen_kwargs top_k (else the model's generation_config default)
                kw["top_k"] = g.top_k
        else:
            kw.update(temperature=None, top_p=None, top_k=None)
        if stops:
            kw["stopping_criteria"] = self._stop_criteria(tuple(stops))
        with torch.inference_mode():
            if prefix_len:  # one request: continue from the cached prefix
                kw["past_key_values"] = self._repeated_cache(tuple(encs[0][:prefix_len]), 1)
            out = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device), **kw)
        res = {}
        for i, r in enumerate(requests):
            new_ids = out[i, width:].tolist()
            # generated tokens up to the first pad/eos that generate() appended after stopping
            n = next((k for k, t in enumerate(new_ids) if t in self._end_ids), len(new_ids))
            text = decode_complete(self.tokenizer, new_ids[:n])  # no half character at the end
            res[r.key] = (self.cut_at_stop(r, text), n)
        return res

    def _stop_criteria(self, stops: tuple[str, ...]):
        """transformers' stop-string criterion for ``stops``, built once per set of stop strings
        (building it scans the whole vocabulary: ~0.2 s for SmolLM2's, paid per generate() call
        when passed as ``stop_strings=``; it keeps no state between calls)."""
        from transformers import StoppingCriteriaList
        from transformers.generation.stopping_criteria import StopStringCriteria

        if stops not in self._stop_cache:
            self._stop_cache[stops] = StopStringCriteria(self.tokenizer, list(stops))
        return StoppingCriteriaList([self._stop_cache[stops]])

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
