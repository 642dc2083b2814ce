"""A typed client for the Sentiment API (see README, "Consuming the API")."""

from sentiment_client.client import Prediction, SentimentClient
from sentiment_client.errors import (
    ApiError,
    ConnectionFailed,
    InvalidRequest,
    NotReady,
    RateLimited,
    Unauthorized,
)

__all__ = [
    "ApiError",
    "ConnectionFailed",
    "InvalidRequest",
    "NotReady",
    "Prediction",
    "RateLimited",
    "SentimentClient",
    "Unauthorized",
]
