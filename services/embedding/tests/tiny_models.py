"""Tiny random BERT models saved in a test: real loading code, milliseconds to run, nothing downloaded."""

from __future__ import annotations

from pathlib import Path

import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertForSequenceClassification, BertModel, PreTrainedTokenizerFast

SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
WORDS = "green tea is made from leaves the railway runs to moscow coffee beans roasted what of".split()


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate(SPECIAL + WORDS)}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=64,
    )


def tiny_config(**extra: int) -> BertConfig:
    return BertConfig(
        vocab_size=len(SPECIAL) + len(WORDS),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        **extra,
    )


def save_tiny_cross_encoder(folder: Path) -> Path:
    torch.manual_seed(0)
    BertForSequenceClassification(tiny_config(num_labels=1)).save_pretrained(folder)
    tiny_tokenizer().save_pretrained(folder)
    return folder


def save_tiny_sentence_transformer(
    folder: Path,
    *,
    pooling: str = "cls",
    max_seq_length: int = 6,
    default_prompt: str | None = None,
    seed: int = 0,
) -> Path:
    """A sentence-transformers folder unlike all-MiniLM-L6-v2: its own pooling and truncation."""
    weights = folder / "weights"
    torch.manual_seed(seed)
    BertModel(tiny_config()).save_pretrained(weights)
    tiny_tokenizer().save_pretrained(weights)
    transformer = Transformer(str(weights), max_seq_length=max_seq_length)
    prompts = {"query": default_prompt} if default_prompt else None
    model = SentenceTransformer(
        modules=[transformer, Pooling(16, pooling_mode=pooling)],
        prompts=prompts,
        default_prompt_name="query" if default_prompt else None,
        device="cpu",
    )
    model.save(str(folder / "model"))
    return folder / "model"
