"""What a backend can do, declared once on its class (``Backend.capabilities``).

The runner, the chat set-up, the judge, the presets and the command line ask a backend for a
capability, never for its name, so that a new backend is one file and one registration line
(:data:`chimed_eval.backends.BACKENDS`). The record lives in ``core`` because the layers below the
backends (``models``' chat set-up and presets) are handed it by their callers; reading it needs no
model: :func:`chimed_eval.backends.backend_capabilities` looks the class up by its registered name.

Each field is something some code path checks; a field is True only where the backend does it.
A backend may still narrow a capability through its options at run time (the openai backend's
``loglikelihood`` needs ``endpoint=completions``) and then refuses with a ConfigError itself.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Capabilities:
    """What a backend can do beyond ``generate`` (which every backend serves).

    ``letter_logprobs``: ``next_token`` requests, the log-probabilities of the option letters as the
    next token (letter-scored multiple choice, the judge's ``--verdict logprobs``).
    ``prompt_logprobs``: ``loglikelihood`` requests, the log-probabilities of continuations after a
    context (lm-eval's scoring of the option texts).
    ``token_logprobs``: ``token_logprobs`` requests, each token's log-probability of a text
    (membership scores, Min-K%).
    ``vocabulary_moments``: with them, each position's mean and spread over the whole vocabulary
    (``Response.token_moments``: Min-K%++).
    ``prefilled_answers``: continues an answer begun for it inside the prompt (the judge's
    ``--verdict logprobs`` reads the score after a prefilled assistant prefix; a chat API cannot).
    ``chat_messages``: takes chat turns as ``Request.messages`` and applies the served model's own
    template (the chat variant on a server).
    ``chat_template``: renders chat turns with the model tokenizer's own chat template (when no
    documented format is declared); a tokenizer without one is reported as such.
    ``chat_stand_in``: has no model whose chat format could be rendered wrong (scripted answers),
    so turns are rendered with a ChatML stand-in and the label says so.
    ``local_weights``: loads weights in this process: the model resolves from a preset, hub id or
    path (an API preset is refused), ``--device``/``--dtype`` apply, and each ``--data-parallel``
    shard gets its own group of GPUs.
    ``answer_script``: the model ``oracle`` answers from the gold answers the runner hands the
    backend at construction (``runner.oracle_script``), never on the requests.
    ``cached_by_default``: its responses go to the default response cache unless ``--no-cache``;
    False where answering costs nothing (then only a ``--cache`` directory given explicitly).
    """

    letter_logprobs: bool = False
    prompt_logprobs: bool = False
    token_logprobs: bool = False
    vocabulary_moments: bool = False
    prefilled_answers: bool = False
    chat_messages: bool = False
    chat_template: bool = False
    chat_stand_in: bool = False
    local_weights: bool = False
    answer_script: bool = False
    cached_by_default: bool = True

    def names(self) -> tuple[str, ...]:
        """The capabilities this backend declares (True fields), in declaration order."""
        return tuple(f.name for f in fields(self) if getattr(self, f.name))


#: the capability a request kind needs (``generate``: every backend)
REQUEST_CAPABILITY: dict[str, str] = {"next_token": "letter_logprobs", "loglikelihood": "prompt_logprobs",
                                      "token_logprobs": "token_logprobs"}
