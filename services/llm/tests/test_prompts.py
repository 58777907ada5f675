from __future__ import annotations

import pytest

from rag_common.contracts import ChatMessage, ContextPassage, GroundedCompletionRequest
from rag_llm import prompts


def request(**overrides: object) -> GroundedCompletionRequest:
    fields: dict[str, object] = {
        "question": "How many moons has Zorblax?",
        "contexts": [
            ContextPassage(index=2, text="Zorblax has three moons.", source="moons.txt"),
            ContextPassage(index=1, text="  The sky on Zorblax is green. ", source="atlas.txt"),
        ],
    }
    return GroundedCompletionRequest.model_validate(fields | overrides)


def test_numbered_contexts_and_the_question_go_into_the_user_message() -> None:
    messages = prompts.grounded_messages(request(), prompts.load_template())

    assert [m.role for m in messages] == ["system", "user"]
    user = messages[-1].content
    assert "[1] (atlas.txt) The sky on Zorblax is green.\n\n[2] (moons.txt) Zorblax has three moons." in user
    assert user.rstrip().endswith("Question: How many moons has Zorblax?")


def test_the_system_message_demands_grounding_citations_and_admitting_ignorance() -> None:
    system = prompts.grounded_messages(request(), prompts.load_template())[0].content

    assert "only" in system
    assert "[1]" in system
    assert "I don't know" in system
    assert "$" not in system


def test_history_sits_between_the_instruction_and_the_question() -> None:
    history = [
        ChatMessage(role="user", content="Hi"),
        ChatMessage(role="assistant", content="Hello! Ask me about Zorblax."),
    ]
    messages = prompts.grounded_messages(request(history=history), prompts.load_template())

    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1:3] == history


def test_a_passage_without_source_is_numbered_alone() -> None:
    rendered = prompts.render_context([ContextPassage(index=3, text="Plain text.")])

    assert rendered == "[3] Plain text."


def test_no_contexts_are_said_plainly() -> None:
    messages = prompts.grounded_messages(request(contexts=[]), prompts.load_template())

    assert prompts.NO_CONTEXT in messages[-1].content


def test_template_syntax_inside_retrieved_text_is_kept_verbatim() -> None:
    tricky = ContextPassage(index=1, text="Costs $question and {braces} and $$.", source="a")
    messages = prompts.grounded_messages(request(contexts=[tricky]), prompts.load_template())

    assert "[1] (a) Costs $question and {braces} and $$." in messages[-1].content


def test_the_template_is_versioned_by_its_file_name() -> None:
    template = prompts.load_template("rag_v1")

    assert template.version == prompts.RAG_PROMPT_VERSION == "rag_v1"


def test_an_unknown_prompt_version_is_a_clear_422() -> None:
    from rag_common.errors import UnprocessableContent
    from rag_llm.prompts import template_for

    assert template_for(None).version == "rag_v1"
    assert template_for("rag_v1").version == "rag_v1"
    with pytest.raises(UnprocessableContent, match="no prompt template 'rag_v9'"):
        template_for("rag_v9")
