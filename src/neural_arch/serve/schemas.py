"""Request and response bodies (pydantic), shaped as OpenAI's API where one exists.

Unknown fields are ignored (OpenAI clients send some we do not use, e.g. ``user``); wrong types and
out-of-range values are 422 with the field's path. ``max_tokens``'s upper bound is the server's cap,
set per app by :func:`completion_request_model`, so it shows in the OpenAPI schema.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

__all__ = [
    "ClassifyRequest",
    "ClassifyResponse",
    "CompletionRequest",
    "CompletionResponse",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "ErrorResponse",
    "ModelList",
    "completion_request_model",
]

_Text = Annotated[str, Field(max_length=100_000)]
_Stop = Annotated[str, Field(min_length=1, max_length=256)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")
    model: str | None = Field(None, description="The served model's id (optional: there is one)")


class CompletionRequest(_Request):
    """``POST /v1/completions``: continue ``prompt``. ``temperature`` 0 is greedy decoding."""

    prompt: _Text | Annotated[list[_Text], Field(min_length=1, max_length=64)]
    max_tokens: int = Field(16, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, ge=0.0, le=1.0)
    stop: _Stop | Annotated[list[_Stop], Field(max_length=4)] | None = None
    seed: int | None = Field(None, ge=-(2**63), le=2**64 - 1)
    stream: bool = False


def completion_request_model(max_tokens_cap: int) -> type[CompletionRequest]:
    """``CompletionRequest`` with ``max_tokens <= max_tokens_cap``."""
    return create_model("CompletionRequest", __base__=CompletionRequest,
                        max_tokens=(int, Field(min(16, max_tokens_cap), ge=1, le=max_tokens_cap)))


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int = 0
    total_tokens: int


class CompletionChoice(BaseModel):
    index: int
    text: str
    logprobs: None = None
    finish_reason: Literal["stop", "length"] | None


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


class EmbeddingRequest(_Request):
    """``POST /v1/embeddings``: one embedding per input string."""

    input: _Text | Annotated[list[_Text], Field(min_length=1, max_length=2048)]
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1, description="Must equal the model's width if given")


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: Usage


class ClassifyRequest(_Request):
    """``POST /v1/classify``: base64-encoded PNG or JPEG images (an image classifier) or texts (a text
    classifier); the ``top_k`` most likely labels of each."""

    input: Annotated[str, Field(max_length=4_000_000)] | Annotated[list[Annotated[str, Field(max_length=4_000_000)]],
                                                                   Field(min_length=1, max_length=256)]
    top_k: int = Field(5, ge=1, le=1000)


class Classification(BaseModel):
    index: int
    label: str
    labels: list[str]
    probabilities: list[float]


class ClassifyResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Classification]
    model: str


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "neural-arch"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
