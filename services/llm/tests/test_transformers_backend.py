"""The transformers backend with a tiny random Llama and a byte-level BPE tokenizer built on the spot."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from rag_llm.main import create_app
from rag_llm.settings import Settings

from .harness import serve

pytest.importorskip("transformers", reason="the optional extra rag-llm[transformers] is not installed")

EOS = "<|endoftext|>"
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def build_tiny_model(folder: Path, *, chat_template: str | None) -> Path:
    """A 2-layer Llama with random weights: nonsense text, but real tokenization, generation and streaming."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=[EOS, "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    text = "The sky on Zorblax is green. Zorblax has three moons. What colour is the sky? " * 50
    bpe.train_from_iterator([text], trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOS, pad_token=EOS)
    if chat_template:
        tokenizer.chat_template = chat_template
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=[CHATML, None], ids=["chat-template", "plain-join"])
def model_folder(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"), chat_template=request.param)


@pytest.fixture
async def client(model_folder: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(
        environment="test", backend="transformers", model_path=str(model_folder), model_name="tiny-llama"
    )
    async with serve(create_app(settings)) as client:
        yield client


async def test_a_completion_counts_prompt_and_generated_tokens(client: httpx.AsyncClient) -> None:
    body = {"messages": [{"role": "user", "content": "What colour is the sky?"}], "max_tokens": 6}
    response = await client.post("/v1/chat/completions", json=body | {"temperature": 0})

    completion = response.json()
    assert response.status_code == 200
    assert completion["model"] == "tiny-llama"
    assert completion["usage"]["prompt_tokens"] > 3
    assert 0 < completion["usage"]["completion_tokens"] <= 6


async def test_a_stream_matches_the_plain_completion(client: httpx.AsyncClient) -> None:
    body = {"messages": [{"role": "user", "content": "Zorblax?"}], "max_tokens": 8, "temperature": 0}
    plain = (await client.post("/v1/chat/completions", json=body)).json()
    streamed = await client.post("/v1/chat/completions", json=body | {"stream": True})

    payloads = [e.removeprefix("data: ") for e in streamed.text.split("\n\n") if e]
    assert payloads[-1] == "[DONE]"
    chunks = [json.loads(p) for p in payloads[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == plain["choices"][0]["message"]["content"]
    assert chunks[-1]["usage"] == plain["usage"]


def test_the_backend_refuses_to_start_without_a_model_folder() -> None:
    with pytest.raises(ValueError, match="LLM_MODEL_PATH"):
        Settings(backend="transformers")


async def test_grounded_passages_are_packed_with_the_models_own_tokenizer(client: httpx.AsyncClient) -> None:
    contexts = [{"index": i, "text": "Zorblax has three moons."} for i in range(1, 41)]
    body = {"question": "How many moons?", "contexts": contexts, "max_tokens": 4, "temperature": 0}
    response = await client.post("/v1/grounded/completions", json=body)

    answer = response.json()
    assert response.status_code == 200
    assert 0 < answer["contexts_used"] < 40, "the tiny model's 512 positions hold only some passages"
    assert answer["usage"]["prompt_tokens"] + 4 <= 512
