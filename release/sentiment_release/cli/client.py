"""`sentiment predict`: score reviews with a running service, through the API client
consumers use (client/sentiment_client), so what it prints is what they would get."""

import json
from pathlib import Path

import click

from sentiment_client import ApiError, ConnectionFailed, SentimentClient
from sentiment_release.cli.options import resolve_target, target_options
from sentiment_release.cli.output import reports_errors, workspace


@click.command()
@click.argument("reviews", nargs=-1)
@target_options
@click.option(
    "--file",
    "review_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Reviews, one per line (sent in as few batches as fit).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per review.")
@click.option("--retries", type=click.IntRange(0, 10), default=3, show_default=True,
              help="Retries of a failed connection or a 503, with backoff.")  # fmt: skip
@reports_errors
def predict(reviews, environment, url, review_file, as_json, retries) -> None:
    """Score REVIEWS (or --file's lines) with the service at --url or deployed as --env.
    The API key comes from $SENTIMENT_API_KEY (for --env: else the gates' key here)."""
    texts = list(reviews)
    if review_file is not None:
        try:
            lines = review_file.read_text(encoding="utf-8").split("\n")
        except (OSError, UnicodeDecodeError) as error:
            raise click.BadParameter(str(error), param_hint="--file") from None
        texts += [line for line in lines if line.strip()]
    if not texts:
        raise click.UsageError("give reviews to score, as arguments or --file")
    target = resolve_target(workspace(), environment, url)
    try:
        with SentimentClient(target.url, target.api_key, retries=retries) as client:
            predictions = client.predict_many(texts)
    except (ApiError, ConnectionFailed) as error:
        raise click.ClickException(f"{target.name}: {error}") from None
    for text, prediction in zip(texts, predictions, strict=True):
        if as_json:
            click.echo(json.dumps({"review": text, "label": prediction.label,
                                   "positive": prediction.positive,
                                   "model_version": prediction.model_version,
                                   "request_id": prediction.request_id,
                                   "item": prediction.item}))  # fmt: skip
        else:
            shown = text if len(text) <= 60 else text[:57] + "..."
            click.echo(f"{prediction.label:8} {prediction.positive:.3f}  {shown}")
    if not as_json:
        first = predictions[0]
        ids = sorted({p.request_id for p in predictions})
        click.echo(f"model {first.model_version} at {target.url}; request id "
                   f"{', '.join(ids)}", err=True)  # fmt: skip


COMMANDS = [predict]
