"""The backend protocol: one method per request kind, batches in, responses out (same order)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

from chimed_eval.core.errors import ConfigError
from chimed_eval.core.types import ModelInfo, Request, Response


class Backend(ABC):
    """A model behind one method per request kind. It never knows which task a request serves."""

    name: str = "backend"
    #: requests per call that the runner should hand over (None: the run's --batch-size)
    run_batch_size: int | None = None

    @abstractmethod
    def model_info(self) -> ModelInfo: ...

    @abstractmethod
    def loglikelihood(self, requests: Sequence[Request]) -> list[Response]: ...

    @abstractmethod
    def next_token(self, requests: Sequence[Request]) -> list[Response]: ...

    @abstractmethod
    def generate(self, requests: Sequence[Request]) -> list[Response]: ...

    def token_logprobs(self, requests: Sequence[Request]) -> list[Response]:
        """Per-token log-probabilities of each request's text (``Response.token_logprobs``, and
        ``token_moments`` where the whole next-token distribution is at hand). Backends that can
        read them override this; the others refuse."""
        raise ConfigError(f"backend {self.name} cannot return per-token log-probabilities; use --backend hf "
                          "(or vllm for Min-K% without Min-K%++)")

    def request_length(self, request: Request) -> int:
        """A length to sort by (longest first); backends with a tokenizer return tokens."""
        return len(request.context) + max((len(c) for c in request.continuations), default=0)

    def sort_key(self, request: Request) -> tuple:
        """Batching order: requests sharing a few-shot prefix together (so its KV cache is
        reused), longest first within them (memory errors surface at once)."""
        return (request.prefix, -self.request_length(request))

    def run(self, kind: str, requests: Sequence[Request]) -> list[Response]:
        fn = {"loglikelihood": self.loglikelihood, "next_token": self.next_token, "generate": self.generate,
              "token_logprobs": self.token_logprobs}[kind]
        out = fn(requests)
        if len(out) != len(requests) or any(r.key != q.key for r, q in zip(out, requests)):
            raise RuntimeError(f"backend {self.name} returned responses out of order for {kind}")
        return out

    def close(self) -> None:
        """Release the model (engines with worker processes override this)."""
