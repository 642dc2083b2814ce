"""What the training data looked like, and how far live traffic is from it.

At training, the bundle records reference statistics on the held-out reviews: the share
of their tokens the model has never seen, and the distribution of their scores and
lengths (counts per bin, the bins cut at the reference's deciles, so each holds about a
tenth of it). Serving measures the same on a window of live reviews; the population
stability index (PSI) of each distribution says how far it moved. Rules of thumb: below
0.1 stable, 0.1 to 0.25 a shift worth watching, above 0.25 a different population.
"""

import bisect
import math
import re
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

BINS = 10
# An empty bin would make PSI infinite: every share is at least this.
SHARE_FLOOR = 1e-4


class Distribution(BaseModel):
    """Counts of values in the bins that `edges` (ascending cut points) make: value v is
    in bin bisect_left(edges, v), so there are len(edges) + 1 bins."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    edges: list[float]
    counts: list[int]

    @model_validator(mode="after")
    def _one_count_per_bin(self) -> "Distribution":
        if len(self.counts) != len(self.edges) + 1:
            raise ValueError(f"{len(self.counts)} counts for {len(self.edges) + 1} bins")
        if any(b < a for a, b in zip(self.edges, self.edges[1:], strict=False)):
            raise ValueError("edges are not ascending")
        return self

    def bin_counts(self, values: Iterable[float]) -> list[int]:
        """The counts of other values in these bins."""
        counts = [0] * len(self.counts)
        for value in values:
            counts[bisect.bisect_left(self.edges, value)] += 1
        return counts

    def psi(self, values: Iterable[float]) -> float | None:
        """The PSI of `values` against this distribution; None without values."""
        return psi(self.counts, self.bin_counts(values))


class ReferenceStats(BaseModel):
    """Held-out reviews at training time, as serving will compare live ones with them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reviews: int = Field(ge=1)
    tokens: int = Field(ge=0)
    # Of the held-out reviews' tokens, the share the model's vocabulary lacks.
    oov_share: float = Field(ge=0, le=1)
    scores: Distribution
    lengths: Distribution  # in characters


def decile_edges(values: Sequence[float]) -> list[float]:
    """The cut points that split `values` into BINS bins of (about) equal counts;
    repeated cut points collapse, so a very lumpy distribution gets fewer bins."""
    ordered = sorted(values)
    cuts = [ordered[min(len(ordered) - 1, len(ordered) * k // BINS)] for k in range(1, BINS)]
    return sorted(set(cuts))


def distribution_of(values: Sequence[float]) -> Distribution:
    edges = decile_edges(values)
    counts = [0] * (len(edges) + 1)
    for value in values:
        counts[bisect.bisect_left(edges, value)] += 1
    return Distribution(edges=edges, counts=counts)


def psi(expected: Sequence[int], actual: Sequence[int]) -> float | None:
    """sum((a - e) * ln(a / e)) over bins, of the shares; None when either is empty."""
    expected_total, actual_total = sum(expected), sum(actual)
    if not expected_total or not actual_total:
        return None
    total = 0.0
    for e_count, a_count in zip(expected, actual, strict=True):
        e = max(e_count / expected_total, SHARE_FLOOR)
        a = max(a_count / actual_total, SHARE_FLOOR)
        total += (a - e) * math.log(a / e)
    return total


class Vocabulary:
    """Counts a review's tokens, and those the model never saw, the way its vectorizer
    splits them (token pattern, lowercasing)."""

    def __init__(self, words: Iterable[str], token_pattern: str, lowercase: bool):
        self._known = frozenset(words)
        self._tokens = re.compile(token_pattern)
        self._lowercase = lowercase

    def count(self, text: str) -> tuple[int, int]:
        """(tokens, tokens not in the vocabulary)."""
        tokens = self._tokens.findall(text.lower() if self._lowercase else text)
        return len(tokens), len(tokens) - sum(map(self._known.__contains__, tokens))


def reference_stats(
    texts: Sequence[str], scores: Sequence[float], vocabulary: Vocabulary
) -> ReferenceStats:
    counts = [vocabulary.count(text) for text in texts]
    tokens = sum(total for total, _ in counts)
    unknown = sum(missing for _, missing in counts)
    return ReferenceStats(
        reviews=len(texts),
        tokens=tokens,
        oov_share=unknown / tokens if tokens else 0.0,
        scores=distribution_of(scores),
        lengths=distribution_of([float(len(text)) for text in texts]),
    )
