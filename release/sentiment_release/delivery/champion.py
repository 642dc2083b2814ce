"""The champion pin, config/champion.yaml: which model bundle every image is built with,
named by its digest in the model repository (delivery.model_store). Only
`sentiment models pin` writes it, so moving it is a reviewed commit, and a new model then
goes through every gate like any other change."""

import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sentiment.files import atomic_write
from sentiment_release.delivery.errors import DeliveryError

DIGEST = r"^sha256:[0-9a-f]{64}$"
HEADER = """\
# The champion: the model bundle every image is built with, by its digest in the model
# repository (config/delivery.yaml, registry.model_repository). Written by
# `sentiment models pin` (`make publish-model`; retrain.yml opens a pull request that
# moves it), so a new model is reviewed and then promoted through every gate like any
# change. null: no champion yet, and builds take this machine's current model.
"""


class PinnedModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    digest: str = Field(pattern=DIGEST)
    version: str


class ChampionPin(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    digest: str | None = Field(default=None, pattern=DIGEST)
    # For people reading the pin; the digest decides, and a pull checks the two agree.
    version: str | None = None
    # A model the image carries beside the champion, for a soft launch (shadow or canary,
    # as each environment's config/service file says).
    challenger: PinnedModel | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> "ChampionPin":
        if (self.digest is None) != (self.version is None):
            raise ValueError("digest and version are set together, or both null")
        if self.challenger is not None and self.digest is None:
            raise ValueError("a challenger is soft-launched beside a champion: pin one first")
        if self.challenger is not None and self.challenger.digest == self.digest:
            raise ValueError("the challenger is the champion")
        return self


def read_pin(path: Path) -> ChampionPin:
    """The pin; no pin when the file does not exist."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return ChampionPin()
    except yaml.YAMLError as error:
        raise DeliveryError(f"{path} is not YAML: {error}") from None
    try:
        return ChampionPin.model_validate(document or {})
    except ValidationError as error:
        raise DeliveryError(f"{path} is not a champion pin: {error}") from None


def write_pin(path: Path, pin: ChampionPin) -> None:
    """Rewrites the pin, keeping the file's leading comment (or writing the standard one)."""
    try:
        existing = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = ""
    comment = re.match(r"(?:#[^\n]*\n)+", existing)
    document = pin.model_dump()
    if document["challenger"] is None:  # the usual case: no soft launch, no key
        del document["challenger"]
    body = yaml.safe_dump(document, sort_keys=False)
    atomic_write(path, ((comment[0] if comment else HEADER) + body).encode())
