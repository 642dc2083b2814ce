"""Finds the UCI files: a local directory if given, else a cached download of the UCI zip."""

import io
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

import requests

from sentiment_release.training.config import TrainingConfig
from sentiment_release.training.dataset import SOURCE_FILES, DatasetError

# The zip is about 84 KB; anything far larger is not the file we expect.
MAX_ZIP_BYTES = 10 * 1024 * 1024
HOW_TO_PROVIDE = (
    "Provide the data in one of two ways: pass --data-dir DIR (or set SENTIMENT_DATA_DIR=DIR) "
    "to a directory holding " + ", ".join(SOURCE_FILES.values()) + "; or connect to the "
    "internet so the UCI zip can be downloaded into the cache."
)


def resolve_data_dir(local_dir: Path | None, url: str, cache_dir: Path, timeout: float) -> Path:
    """The directory to read the files from, downloading them only when no local copy is given."""
    if local_dir is not None:
        missing = [name for name in SOURCE_FILES.values() if not (local_dir / name).is_file()]
        if missing:
            raise DatasetError(f"data directory {local_dir} lacks {', '.join(missing)}")
        return local_dir
    return fetch(url, cache_dir, timeout)


def fetch(url: str, cache_dir: Path, timeout: float) -> Path:
    """Downloads and extracts the UCI zip into cache_dir once; later calls reuse it."""
    target = cache_dir / "sentiment-labelled-sentences"
    if all((target / name).is_file() for name in SOURCE_FILES.values()):
        return target
    payload = _download(url, timeout)
    members = _extract(payload, url)
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Extract next to the target and rename, so a failed run never leaves a partial cache.
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=cache_dir))
    for name, data in members.items():
        (staging / name).write_bytes(data)
    try:
        staging.rename(target)
    except OSError:  # another run filled the cache first; its copy is as good as ours
        for name in members:
            (staging / name).unlink()
        staging.rmdir()
    return target


def _download(url: str, timeout: float) -> bytes:
    try:
        with requests.get(url, timeout=timeout, stream=True) as response:
            response.raise_for_status()
            payload = io.BytesIO()
            for chunk in response.iter_content(chunk_size=65536):
                payload.write(chunk)
                if payload.tell() > MAX_ZIP_BYTES:
                    raise DatasetError(
                        f"{url} sent more than {MAX_ZIP_BYTES} bytes; not the UCI zip"
                    )
            return payload.getvalue()
    except requests.RequestException as error:
        raise DatasetError(f"could not download {url}: {error}.\n{HOW_TO_PROVIDE}") from None


def _extract(payload: bytes, url: str) -> dict[str, bytes]:
    """The three data files from the zip, wherever it nests them; nothing else is written."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(payload))
    except zipfile.BadZipFile:
        raise DatasetError(f"{url} did not return a zip file") from None
    by_name = {}
    for info in archive.infolist():
        name = PurePosixPath(info.filename).name
        if name in SOURCE_FILES.values() and not info.filename.startswith("__MACOSX"):
            by_name[name] = archive.read(info)
    missing = sorted(set(SOURCE_FILES.values()) - by_name.keys())
    if missing:
        raise DatasetError(f"the zip from {url} lacks {', '.join(missing)}")
    return by_name


def data_dir_for(config: TrainingConfig, override: Path | None = None) -> Path:
    """The data directory training and the skew check use: `override`, else the
    configured SENTIMENT_DATA_DIR, else the cached download."""
    dataset = config.dataset
    return resolve_data_dir(
        override or config.data_dir,
        str(dataset.url),
        dataset.cache_dir,
        dataset.download_timeout_seconds,
    )
