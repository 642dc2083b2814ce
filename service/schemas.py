"""Request and response shapes. They validate requests and generate the OpenAPI document."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    # strict: 1 is not a string; forbid: a misspelt field is an error, not ignored.
    model_config = ConfigDict(extra="forbid", strict=True)


class PredictRequest(Strict):
    review: str = Field(description="The text to score.", examples=["Thanks, I hate it"])


class BatchPredictRequest(Strict):
    reviews: list[str] = Field(description="Texts to score, in order.")


class PredictResponse(BaseModel):
    positive: float = Field(ge=0, le=1, description="Probability that the review is positive.")
    negative: float = Field(ge=0, le=1, description="1 - positive.")
    model_version: str


class ScoredReview(BaseModel):
    label: str = Field(description="positive or negative, by the model's threshold.")
    positive: float = Field(ge=0, le=1)
    negative: float = Field(ge=0, le=1)


class BatchPredictResponse(BaseModel):
    predictions: list[ScoredReview]
    model_version: str
    request_id: str


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Ready(BaseModel):
    status: str = Field(examples=["ready"])
    model_version: str


class ModelDescription(BaseModel):
    version: str
    sha256: str
    trained_at: datetime
    git_commit: str
    threshold: float
    labels: dict[str, str]
    metrics: dict[str, Any]
    dataset: dict[str, Any]
    hyperparameters: dict[str, Any]
    # What scores: "compiled" (the bundle's plain-array scorer) or "scikit-learn".
    scorer: Literal["compiled", "scikit-learn"]


class ServiceDescription(BaseModel):
    environment: str
    version: str
    git_commit: str
    build_id: str


class ModelInfo(BaseModel):
    model: ModelDescription
    service: ServiceDescription


class ErrorBody(BaseModel):
    code: str = Field(examples=["empty_review"])
    message: str
    details: list[dict[str, Any]] | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
