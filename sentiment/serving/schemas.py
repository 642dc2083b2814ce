"""Request and response shapes. They validate requests and generate the OpenAPI document."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


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


class FeedbackRequest(Strict):
    request_id: str = Field(
        pattern=r"^[A-Za-z0-9._:-]{1,128}$",
        description="The X-Request-ID of the prediction (as answered), made with this key.",
    )
    label: int = Field(description="The true label: 1 positive, 0 negative.")
    item: int = Field(default=0, ge=0, lt=10_000,
                      description="Which review of a batch (0 for a single one).")  # fmt: skip
    review: str | None = Field(
        default=None,
        description="The review as it was sent (checked against its sha256), so the "
        "feedback can become training data where reviews are not kept.",
    )

    @field_validator("label", mode="before")
    @classmethod
    def _zero_or_one(cls, value: Any) -> Any:
        if type(value) is not int or value not in (0, 1):  # true and 1.0 are not labels
            raise ValueError("must be 0 (negative) or 1 (positive)")
        return value


class FeedbackResponse(BaseModel):
    request_id: str
    item: int
    label: int
    predicted: int = Field(description="The class the model predicted.")
    correct: bool
    model_version: str
    training_data: bool = Field(description="Whether the review is known, for retraining.")


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
