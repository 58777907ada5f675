"""Versioned prompt templates for grounded answers.

A template lives in `prompts/<version>.txt` with a `### system` and a `### user` section;
`$context` and `$question` are filled with `string.Template`, so braces or dollar signs in
retrieved text never break the formatting. A new wording gets a new file and version, so an
answer can always be traced to the exact prompt that produced it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from string import Template

from rag_common.contracts import ChatMessage, ContextPassage, GroundedCompletionRequest
from rag_common.errors import UnprocessableContent

RAG_PROMPT_VERSION = "rag_v1"
NO_CONTEXT = "(no context passages were found)"
_SECTION = re.compile(r"^### (system|user)[ \t]*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    version: str
    system: Template
    user: Template


@cache
def load_template(version: str = RAG_PROMPT_VERSION) -> PromptTemplate:
    """Read and parse `prompts/<version>.txt` from the installed package (once per version)."""
    text = files("rag_llm").joinpath("prompts", f"{version}.txt").read_text(encoding="utf-8")
    parts = _SECTION.split(text)
    sections = dict(zip(parts[1::2], (body.strip() for body in parts[2::2]), strict=True))
    if set(sections) != {"system", "user"}:
        raise ValueError(
            f"Prompt template {version} needs exactly one '### system' and one '### user' section."
        )
    return PromptTemplate(
        version=version, system=Template(sections["system"]), user=Template(sections["user"])
    )


def template_for(version: str | None) -> PromptTemplate:
    """The requested template version (the newest when None); an unknown one is the caller's error."""
    try:
        return load_template(version or RAG_PROMPT_VERSION)
    except FileNotFoundError as exc:
        raise UnprocessableContent(f"prompt_version: there is no prompt template '{version}'.") from exc


def render_context(passages: list[ContextPassage]) -> str:
    """One passage per block, numbered as the model must cite it: `[n] (source) text`."""
    if not passages:
        return NO_CONTEXT
    blocks = []
    for passage in sorted(passages, key=lambda p: p.index):
        source = f" ({passage.source})" if passage.source else ""
        blocks.append(f"[{passage.index}]{source} {passage.text.strip()}")
    return "\n\n".join(blocks)


def grounded_messages(request: GroundedCompletionRequest, template: PromptTemplate) -> list[ChatMessage]:
    """System instruction, then the earlier turns, then the numbered context with the question."""
    values = {"context": render_context(request.contexts), "question": request.question}
    return [
        ChatMessage(role="system", content=template.system.substitute(values)),
        *request.history,
        ChatMessage(role="user", content=template.user.substitute(values)),
    ]
