"""Typed contracts between the services: every request and response body on the wire."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
CollectionName = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
]
FilterValue = str | int | float | bool


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- embeddings (OpenAI-shaped) -------------------------------------------------------


class EmbeddingRequest(Strict):
    input: NonEmptyStr | Annotated[list[NonEmptyStr], Field(min_length=1, max_length=2048)]
    model: str | None = None
    encoding_format: Literal["float", "base64"] = Field(
        default="float", description="base64: little-endian float32 bytes (what the openai SDK asks for)."
    )
    user: str | None = None

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


class EmbeddingData(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingData]
    model: str
    usage: Usage
    model_version: str | None = Field(
        default=None, description="The model version that produced it (also the X-Model-Version header)."
    )


# --- rerank (Cohere/TEI-shaped; the embedding service hosts the cross-encoder) ----------


class RerankRequest(Strict):
    query: NonEmptyStr
    documents: Annotated[list[str], Field(min_length=1, max_length=1000)]
    top_n: int | None = Field(default=None, ge=1, description="Only the best n results; default: all.")
    model: str | None = None


class RerankResult(BaseModel):
    index: int = Field(description="Position of the document in the request.")
    score: float = Field(description="Relevance of the document to the query; higher is more relevant.")


class RerankResponse(BaseModel):
    object: Literal["list"] = "list"
    model: str
    results: list[RerankResult] = Field(description="Best first.")


# --- retrieval ---------------------------------------------------------------------------


class CollectionCreate(Strict):
    name: CollectionName
    vector_size: int = Field(gt=0, le=65536)
    distance: Literal["cosine", "dot", "euclid"] = "cosine"
    embedding_model: str | None = Field(
        default=None,
        max_length=200,
        description="The model whose vectors the collection holds; recorded, and every later request "
        "naming another model is refused (409).",
    )


class NewCollection(Strict):
    """A collection to create through the orchestrator: sized by the embedding model in service."""

    name: CollectionName


class CollectionInfo(BaseModel):
    name: str
    vector_size: int
    distance: str
    points_count: int
    hybrid: bool = Field(default=False, description="Whether points also get BM25 sparse vectors.")
    embedding_model: str | None = Field(
        default=None, description="The model of its vectors; null for a collection created without one."
    )
    write_lock: str | None = Field(
        default=None, description="Who holds the collection read-only (a re-embedding job); null if writable."
    )


class CollectionList(BaseModel):
    collections: list[CollectionInfo]


class Point(Strict):
    id: str = Field(description="A UUID.")
    vector: list[float]
    payload: dict[str, Any] = Field(default_factory=dict)


class UpsertRequest(Strict):
    points: Annotated[list[Point], Field(min_length=1, max_length=10_000)]
    embedding_model: str | None = Field(
        default=None,
        max_length=200,
        description="The model of these vectors; checked against the collection's.",
    )


class UpsertResponse(BaseModel):
    upserted: int


SearchMode = Literal["dense", "sparse", "hybrid"]


class SearchRequest(Strict):
    vector: list[float] | None = Field(default=None, description="The query embedding (dense and hybrid).")
    text: str | None = Field(default=None, description="The query text, for BM25 (sparse and hybrid).")
    mode: SearchMode = Field(
        default="dense", description="dense vectors, sparse BM25, or both fused with reciprocal rank fusion."
    )
    top_k: int = Field(default=5, ge=1, le=100)
    filter: dict[str, FilterValue] | None = Field(
        default=None, description="Payload fields that must equal the given values."
    )
    score_threshold: float | None = Field(
        default=None, description="Minimum dense similarity; in hybrid mode it filters the dense candidates."
    )
    embedding_model: str | None = Field(
        default=None, max_length=200, description="The model of `vector`; checked against the collection's."
    )

    @model_validator(mode="after")
    def _inputs_match_mode(self) -> SearchRequest:
        if self.mode in ("dense", "hybrid") and self.vector is None:
            raise ValueError(f"mode '{self.mode}' needs a query vector")
        if self.mode in ("sparse", "hybrid") and not (self.text and self.text.strip()):
            raise ValueError(f"mode '{self.mode}' needs the query text")
        return self


FilterValues = FilterValue | Annotated[list[FilterValue], Field(min_length=1, max_length=10_000)]


class DeleteRequest(Strict):
    filter: Annotated[dict[str, FilterValues], Field(min_length=1)] = Field(
        description="Delete the points whose payload matches every field (a list: any of its values)."
    )
    exclude: dict[str, FilterValues] | None = Field(
        default=None, description="...but keep those whose payload matches any of these fields."
    )


class DeleteResponse(BaseModel):
    deleted: int


class ScrollRequest(Strict):
    filter: dict[str, FilterValue] | None = None
    limit: int = Field(default=1000, ge=1, le=10_000)
    offset: str | None = Field(default=None, description="The `next_offset` of the previous page.")


class StoredPoint(BaseModel):
    id: str
    payload: dict[str, Any]


class ScrollResponse(BaseModel):
    points: list[StoredPoint]
    next_offset: str | None = Field(default=None, description="Where the next page starts; null: no more.")


class CollectionReplace(Strict):
    """Serve `source` under the collection's name, atomically; what the name served before is deleted."""

    source: CollectionName


class WriteLock(Strict):
    owner: NonEmptyStr = Field(max_length=200, description="Named in the 409 every refused write gets.")


class DocumentCount(BaseModel):
    document_id: str
    chunks: int


class DocumentCounts(BaseModel):
    documents: list[DocumentCount]


class SearchHit(BaseModel):
    id: str
    score: float
    payload: dict[str, Any]


class SearchResponse(BaseModel):
    hits: list[SearchHit]


# --- chat (OpenAI-shaped) --------------------------------------------------------------


class ChatMessage(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str


class GenerationParams(BaseModel):
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None


class ChatCompletionRequest(GenerationParams):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    stream: bool = False


class ChatChoice(BaseModel):
    index: int = 0
    message: ChatMessage
    finish_reason: str | None = "stop"


def new_completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


class ChatCompletionResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str = Field(default_factory=new_completion_id)
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChatChoice]
    usage: Usage = Field(default_factory=Usage)
    model_version: str | None = Field(
        default=None, description="The model version that produced it (also the X-Model-Version header)."
    )


class ChunkDelta(BaseModel):
    role: str | None = None
    content: str | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: str | None = None


class ChatCompletionChunk(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    model_version: str | None = Field(
        default=None, description="The model version that produced it (also the X-Model-Version header)."
    )


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "rag-platform"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


# --- grounded generation (orchestrator -> llm) ---------------------------------------


class ContextPassage(BaseModel):
    index: int = Field(ge=1, description="The citation number the model should use, [1], [2], ...")
    text: str
    source: str = ""


class GroundedCompletionRequest(GenerationParams):
    question: NonEmptyStr
    contexts: list[ContextPassage]
    history: list[ChatMessage] = Field(default_factory=list)
    model: str | None = None
    prompt_version: str | None = Field(
        default=None, pattern=r"^[a-z0-9_]{1,64}$", description="The prompt template; default: the newest."
    )
    stream: bool = False


# --- safety ----------------------------------------------------------------------------


class SafetyCheckRequest(Strict):
    text: str
    direction: Literal["input", "output"]
    tenant: str | None = Field(default=None, description="Picks the tenant's policy in the safety service.")
    policy: str | None = Field(
        default=None, description="A named safety policy (the caller's API key's); wins over `tenant`."
    )


class PassageScreeningRequest(Strict):
    passages: Annotated[list[str], Field(min_length=1, max_length=64)]
    tenant: str | None = None
    policy: str | None = None


class PassageScreening(BaseModel):
    """Which retrieved passages carry an (indirect) prompt injection and must not reach the prompt."""

    blocked: list[int] = Field(default_factory=list)


class GroundingRequest(Strict):
    answer: str
    passages: list[str]


class Grounding(BaseModel):
    score: float = Field(description="How well the answer's sentences are supported by the passages, 0 to 1.")
    grounded: bool


class SafetyFinding(BaseModel):
    kind: Literal["pii", "prompt_injection", "moderation"]
    label: str
    score: float
    start: int | None = None
    end: int | None = None


class SafetyVerdict(BaseModel):
    verdict: Literal["allow", "redact", "block", "unchecked"] = Field(
        description="`unchecked` only when the safety service was down and the policy fails open."
    )
    text: str = Field(description="The text to use downstream: redacted when the verdict is redact.")
    findings: list[SafetyFinding] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)
    mapping: dict[str, str] | None = Field(
        default=None,
        repr=False,
        description="Placeholder -> original value (reversible redaction): for the asker's answer only, "
        "never to be stored or logged.",
    )


# --- RAG (gateway -> orchestrator) -----------------------------------------------------


class RagQuery(Strict):
    question: NonEmptyStr
    collection: CollectionName = "default"
    top_k: int = Field(default=4, ge=1, le=50)
    filter: dict[str, FilterValue] | None = None
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    session_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="A conversation: its last turns make a follow-up question standalone before retrieval.",
    )
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="The model to answer with; refused (422) unless the orchestrator allows clients to name it.",
    )
    tier: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="A cost/quality tier (e.g. fast, quality) the orchestrator maps to a model.",
    )
    user: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="A stable id of the end user (as OpenAI's `user`); keeps A/B experiment variants sticky.",
    )


class Citation(BaseModel):
    index: int = Field(description="The number the answer cites, as in [1].")
    document_id: str
    chunk_index: int
    score: float
    text: str
    start: int = Field(description="Character offset of the chunk in its document.")
    end: int
    metadata: dict[str, Any] = Field(default_factory=dict)


class RagAnswer(BaseModel):
    answer: str
    citations: list[Citation]
    model: str
    usage: Usage = Field(default_factory=Usage)
    safety: dict[str, str] = Field(default_factory=dict, description="Verdict per check direction.")
    grounding: Grounding | None = Field(default=None, description="Support of the answer by its citations.")
    passages_dropped: int = Field(default=0, description="Retrieved passages withheld for prompt injection.")
    cached: bool = Field(default=False, description="Served from the answer cache.")
    cache: Literal["exact", "semantic"] | None = Field(
        default=None,
        description="Which answer cache served it: 'exact' (the same question) or 'semantic' (a similar one).",
    )
    cache_similarity: float | None = Field(
        default=None, description="A semantic hit: cosine similarity of this question to the cached one."
    )
    memory: Literal["on", "off"] | None = Field(
        default=None,
        description="With a session_id: 'on' when the conversation is remembered, 'off' when memory is "
        "unavailable (no Redis) and the question was answered on its own.",
    )
    standalone_question: str | None = Field(
        default=None, description="A follow-up rewritten with its conversation, as retrieval saw it."
    )
    experiment: str | None = Field(default=None, description="The A/B experiment this answer took part in.")
    variant: str | None = Field(default=None, description="The experiment's variant that answered.")


class DocumentIn(Strict):
    id: str | None = Field(
        default=None, max_length=200, description="Stable id; defaults to a hash of the text."
    )
    text: NonEmptyStr
    metadata: dict[str, FilterValue] = Field(default_factory=dict)


class IngestRequest(Strict):
    collection: CollectionName = "default"
    documents: Annotated[list[DocumentIn], Field(min_length=1, max_length=1000)]


class IngestedDocument(BaseModel):
    document_id: str
    chunks: int


class IngestResponse(BaseModel):
    collection: str
    documents: list[IngestedDocument]
    chunks: int


class DocumentChunk(BaseModel):
    model_config = ConfigDict(extra="ignore")

    chunk_index: int
    text: str
    start: int
    end: int


class DocumentDetail(BaseModel):
    document_id: str
    collection: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    chunks: list[DocumentChunk]


class DocumentDeleted(BaseModel):
    document_id: str
    collection: str
    chunks_deleted: int


JobState = Literal["queued", "running", "succeeded", "failed"]


class JobStatus(BaseModel):
    """An ingestion job: progress by documents, the chunks written, and why it failed if it did."""

    job_id: str
    collection: str
    tenant: str = "default"
    status: JobState = "queued"
    documents_total: int
    documents_done: int = 0
    chunks: int = 0
    retries: int = 0
    error: str | None = None
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed")


class ReembedStatus(BaseModel):
    """A re-embedding job: a collection's points moved to the embedding model in service."""

    job_id: str
    collection: str
    tenant: str = "default"
    status: JobState = "queued"
    source_model: str | None = Field(default=None, description="The model the collection held.")
    target_model: str | None = Field(default=None, description="The model it is re-embedded with.")
    points_total: int = 0
    points_done: int = 0
    shadow: str | None = Field(default=None, description="The collection being filled; served once complete.")
    offset: str | None = Field(default=None, description="Where the scroll resumes.")
    error: str | None = None
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed")


WebhookState = Literal["none", "pending", "delivered", "failed"]


class RagJobRequest(RagQuery):
    """A RAG query run as a background job; the answer is fetched later or posted to `webhook_url`."""

    webhook_url: str | None = Field(
        default=None,
        max_length=2000,
        description="POSTed the finished job, signed in `X-Signature`; its host must be allow-listed.",
    )

    @model_validator(mode="after")
    def _not_streamed(self) -> RagJobRequest:
        if self.stream:
            raise ValueError("a job cannot stream; leave `stream` false and fetch the result")
        return self


class JobProblem(BaseModel):
    """Why a job failed, as the problem a synchronous request would have answered."""

    title: str
    status: int
    detail: str


class GenerationJobStatus(BaseModel):
    """A RAG generation job: its state, why it failed if it did, and its webhook delivery."""

    job_id: str
    collection: str
    tenant: str = "default"
    status: JobState = "queued"
    attempts: int = Field(
        default=0,
        description="Runs started; one cut off by a dead worker counts, one handed back at shutdown does not.",
    )
    retries: int = Field(default=0, description="Retries while a downstream service was unavailable.")
    error: JobProblem | None = None
    webhook: WebhookState = "none"
    safety_policy: str | None = Field(
        default=None, description="The safety policy of the key that submitted it; the job runs under it."
    )
    created_at: float = Field(default_factory=time.time)
    updated_at: float = Field(default_factory=time.time)

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed")


class GenerationJobEvent(BaseModel):
    """The webhook body: the finished job, and its answer when it succeeded."""

    job: GenerationJobStatus
    result: RagAnswer | None = None
