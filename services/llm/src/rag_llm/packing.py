"""Fit a grounded prompt into the model's context window by dropping the weakest passages whole.

Passages arrive ranked best first, so their citation numbers order them: the highest index is the
weakest. The prompt keeps the instruction, the history, the question and room for `max_tokens`;
it takes as many of the best passages as fit, counted with the backend's own tokenizer, and never
cuts a passage in the middle (a half passage cited as [n] would be a misquote).
"""

from __future__ import annotations

from dataclasses import dataclass

from rag_common.contracts import ChatMessage, ContextPassage, GroundedCompletionRequest

from . import prompts
from .errors import ContextTooLong
from .ports import ChatBackend


@dataclass(frozen=True, slots=True)
class Packed:
    messages: list[ChatMessage]
    contexts_used: int
    prompt_tokens: int


def pack(
    request: GroundedCompletionRequest,
    template: prompts.PromptTemplate,
    *,
    backend: ChatBackend,
    max_tokens: int,
) -> Packed:
    """The prompt with the most best-ranked passages that fit; blocking (tokenizes), so run it off the loop.

    Binary search over the number of passages kept: adding a passage never shortens the prompt,
    so it needs about log2(n) tokenizations instead of n.
    """
    ranked = sorted(request.contexts, key=lambda passage: passage.index)
    budget = backend.context_window - max_tokens

    def attempt(kept: int) -> Packed:
        messages = prompts.grounded_messages(_with_contexts(request, ranked[:kept]), template)
        return Packed(messages=messages, contexts_used=kept, prompt_tokens=backend.count_tokens(messages))

    best = attempt(len(ranked))
    if best.prompt_tokens <= budget:
        return best
    best = attempt(0)
    if best.prompt_tokens > budget:
        raise ContextTooLong(context_window=backend.context_window, needed=best.prompt_tokens + max_tokens)
    low, high = 0, len(ranked) - 1  # `low` fits, `high + 1` does not
    while low < high:
        middle = (low + high + 1) // 2
        candidate = attempt(middle)
        if candidate.prompt_tokens <= budget:
            low, best = middle, candidate
        else:
            high = middle - 1
    return best


def _with_contexts(
    request: GroundedCompletionRequest, contexts: list[ContextPassage]
) -> GroundedCompletionRequest:
    return request.model_copy(update={"contexts": contexts})
