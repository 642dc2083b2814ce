"""Model bundles in the OCI registry: one artifact per bundle, addressed by its digest.

An artifact is an OCI image manifest whose config is the bundle's metadata.json (its
media type, METADATA_MEDIA_TYPE, names the artifact's type) and whose layers are the
bundle's model files, each titled with its file name. The manifest's bytes are made here,
the same way every time, so one bundle has one digest in every registry and pushing it
again changes nothing. A pull takes a digest and checks every byte against it: the
manifest against the digest, each blob against the manifest, the files against the
metadata, before anything is written; the registry is never trusted for more than bytes.
"""

import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests
import urllib3

from sentiment.model import BundleMetadata, ModelFolder
from sentiment.model.bundle import (
    METADATA_FILE,
    BundleError,
    read_metadata,
    read_verified_bytes,
    read_verified_compiled,
)
from sentiment.model.publish import add_bundle
from sentiment_release.delivery.errors import DeliveryError

MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
METADATA_MEDIA_TYPE = "application/vnd.sentiment-mlops.model.metadata.v1+json"
FILE_MEDIA_TYPES = {
    "model.joblib": "application/vnd.sentiment-mlops.model.joblib.v1",
    "scorer.json": "application/vnd.sentiment-mlops.model.scorer.v1+json",
}
TITLE = "org.opencontainers.image.title"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
# Far above any bundle this project makes (a few MB): a registry cannot fill the disk.
MAX_BLOB_BYTES = 512 * 1024 * 1024
MAX_MANIFEST_BYTES = 64 * 1024
PING_TIMEOUT_SECONDS = 5
CONNECT_TIMEOUT_SECONDS = 10
READ_TIMEOUT_SECONDS = 60
# One manifest, blob or listing, start to end (a 512 MB blob at 2 MB/s).
TRANSFER_SECONDS = 300
MAX_TAGS = 10_000


class ModelStoreError(DeliveryError):
    pass


@dataclass(frozen=True)
class StoredModel:
    digest: str
    metadata: BundleMetadata
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Unreadable:
    """Something in the model repository that is not a model bundle, and why."""

    digest: str
    problem: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Artifact:
    """A bundle as the registry holds it: the manifest's bytes and the blobs it names."""

    manifest: bytes
    blobs: dict[str, bytes]  # digest -> bytes, the metadata's included

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def pack(bundle_dir: Path) -> Artifact:
    """The artifact of a bundle, once its files match its metadata."""
    metadata, model_bytes = read_verified_bytes(bundle_dir)
    compiled_bytes = read_verified_compiled(bundle_dir, metadata)
    document = (bundle_dir / METADATA_FILE).read_bytes()
    if read_metadata(bundle_dir) != metadata:  # the bytes read now are the ones checked
        raise ModelStoreError(f"{bundle_dir / METADATA_FILE} changed while it was read")
    files = {metadata.model_file: model_bytes}
    if metadata.compiled is not None and compiled_bytes is not None:
        files[metadata.compiled.file] = compiled_bytes
    layers = [
        {
            "mediaType": FILE_MEDIA_TYPES[name],
            "digest": digest_of(data),
            "size": len(data),
            "annotations": {TITLE: name},
        }
        for name, data in sorted(files.items())
    ]
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {
            "mediaType": METADATA_MEDIA_TYPE,
            "digest": digest_of(document),
            "size": len(document),
        },
        "layers": layers,
        "annotations": {
            "org.opencontainers.image.version": metadata.version,
            "org.opencontainers.image.created": metadata.created_at.isoformat(),
            "org.opencontainers.image.revision": metadata.git_commit,
        },
    }
    blobs = {digest_of(data): data for data in [document, *files.values()]}
    return Artifact(json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode(), blobs)


def read_manifest(digest: str, manifest_bytes: bytes) -> tuple[dict, dict[str, dict]]:
    """The descriptors of metadata.json and of each model file, by name, once the
    manifest hashes to `digest` and is a model bundle's."""
    if digest_of(manifest_bytes) != digest:
        raise ModelStoreError(f"the registry's manifest for {digest} does not hash to it")
    try:
        manifest = json.loads(manifest_bytes)
        config, layers = manifest["config"], manifest["layers"]
        if manifest.get("mediaType") != MANIFEST_MEDIA_TYPE:
            raise ValueError(f"manifest media type {manifest.get('mediaType')!r}")
        if config["mediaType"] != METADATA_MEDIA_TYPE:
            raise ValueError(f"config media type {config['mediaType']!r} is not a model's")
        files: dict[str, dict] = {}
        for layer in layers:
            name = layer["annotations"][TITLE]
            if FILE_MEDIA_TYPES.get(name) != layer["mediaType"] or name in files:
                raise ValueError(f"unexpected layer {name!r} ({layer['mediaType']!r})")
            files[name] = layer
    except (ValueError, KeyError, TypeError) as error:
        raise ModelStoreError(f"{digest} is not a model bundle artifact: {error}") from None
    return config, files


def checked_blob(descriptor: dict, fetch_blob: Callable[[str, int], bytes]) -> bytes:
    """The blob a descriptor names, fetched by `fetch_blob(digest, size)` and checked."""
    digest, size = descriptor.get("digest"), descriptor.get("size")
    if not (isinstance(digest, str) and DIGEST.match(digest)):
        raise ModelStoreError(f"a layer names {digest!r}, which is not a sha256 digest")
    if not (isinstance(size, int) and 0 <= size <= MAX_BLOB_BYTES):
        raise ModelStoreError(f"blob {digest} has size {size!r} (at most {MAX_BLOB_BYTES})")
    data = fetch_blob(digest, size)
    if len(data) != size or digest_of(data) != digest:
        raise ModelStoreError(f"blob {digest} from the registry does not match its digest")
    return data


class ModelStore:
    """The model repository REGISTRY/NAME, through the ORAS client. Its credentials are
    REGISTRY_TOKEN (and REGISTRY_USERNAME) where set, for one step (on GitHub: the job's
    token), else docker's (`docker login`)."""

    def __init__(self, repository: str, tls_verify: bool):
        import oras.provider  # imports requests' stack: only model commands pay for it

        self.repository = repository
        self.host = repository.split("/", 1)[0]
        self.tls_verify = tls_verify
        self.client = oras.provider.Registry(
            hostname=self.host, insecure=not tls_verify, tls_verify=tls_verify
        )
        token = os.environ.get("REGISTRY_TOKEN")
        user = os.environ.get("REGISTRY_USERNAME") or "token"
        self.credentials = (user, token) if token else None

    def reference(self, digest: str) -> str:
        return f"{self.repository}@{digest}"

    def push(self, bundle_dir: Path) -> StoredModel:
        """Pushes a bundle (blobs first, then the manifest, tagged with its version)."""
        artifact = pack(bundle_dir)
        metadata = read_metadata(bundle_dir)
        self._ping()
        container = self.client.get_container(f"{self.repository}:{metadata.version}")
        self._authenticate(container)
        for digest, data in artifact.blobs.items():
            self._put_blob(container, digest, data)
        url = f"{self.client.prefix}://{container.manifest_url()}"
        response = self._request(url, "PUT", data=artifact.manifest,
                                 headers={"Content-Type": MANIFEST_MEDIA_TYPE})  # fmt: skip
        self._expect(response, f"pushing the manifest of model {metadata.version}")
        answered = response.headers.get("Docker-Content-Digest")
        if answered and answered != artifact.digest:
            raise ModelStoreError(
                f"the registry stored model {metadata.version} as {answered}, not {artifact.digest}"
            )
        return StoredModel(artifact.digest, metadata, (metadata.version,))

    def pull(self, digest: str, registry: ModelFolder) -> BundleMetadata:
        """Writes the bundle `digest` into `registry` (not made current), every byte
        checked; a version already there must be the same bundle, byte for byte."""
        document, files = self._fetch(digest, with_files=True)
        try:
            return add_bundle(registry, document, files)
        except BundleError as error:
            raise ModelStoreError(f"model {digest}: {error}") from None

    def metadata(self, digest: str) -> BundleMetadata:
        """The metadata of the artifact `digest` (its model files are not fetched)."""
        document, _ = self._fetch(digest, with_files=False)
        return _parse_metadata(digest, document)

    def list(self) -> list[StoredModel | Unreadable]:
        """Every model in the repository, oldest first, with the tags that name it; then
        whatever else was pushed there."""
        self._ping()
        container = self.client.get_container(self.repository)
        self._authenticate(container)
        response = self._request(f"{self.client.prefix}://{container.tags_url(N=MAX_TAGS)}", "GET")
        if response.status_code == 404:
            return []
        self._expect(response, "listing the tags", keep_body=True)
        try:
            tags = json.loads(_read_capped(response, MAX_MANIFEST_BYTES * 16, "the tag list"))
            tags = [tag for tag in tags.get("tags") or [] if isinstance(tag, str)]
        except (ValueError, AttributeError) as error:
            raise ModelStoreError(f"listing {self.repository}: {error}") from None
        manifests: dict[str, bytes] = {}
        found: dict[str, list[str]] = {}
        for tag in sorted(tags or []):
            manifest = self._manifest(tag)
            manifests[digest_of(manifest)] = manifest
            found.setdefault(digest_of(manifest), []).append(tag)
        stored, unreadable = [], []
        for digest, names in found.items():
            try:
                document, _ = self._fetch(digest, False, manifests[digest])
                metadata = _parse_metadata(digest, document)
                stored.append(StoredModel(digest, metadata, tuple(names)))
            except ModelStoreError as error:
                unreadable.append(Unreadable(digest, str(error), tuple(names)))
        return [*sorted(stored, key=lambda model: model.metadata.created_at), *unreadable]

    def _fetch(
        self, digest: str, with_files: bool, manifest: bytes | None = None
    ) -> tuple[bytes, dict[str, bytes]]:
        """metadata.json and (`with_files`) the model files of `digest`, checked; its
        manifest is fetched unless given (a listing has read it already)."""
        if not DIGEST.match(digest):
            raise ModelStoreError(f"{digest!r} is not a sha256 digest (sha256:<64 hex>)")
        container = self.client.get_container(self.reference(digest))
        if manifest is None:
            self._ping()
            self._authenticate(container)
            manifest = self._manifest(digest)
        config, files = read_manifest(digest, manifest)

        def fetch(blob: str, size: int) -> bytes:
            return self._blob(container, blob, size)

        document = checked_blob(config, fetch)
        if not with_files:
            return document, {}
        return document, {name: checked_blob(layer, fetch) for name, layer in files.items()}

    def _manifest(self, reference: str) -> bytes:
        container = self.client.get_container(f"{self.repository}@{reference}"
                                              if reference.startswith("sha256:")
                                              else f"{self.repository}:{reference}")  # fmt: skip
        url = f"{self.client.prefix}://{container.manifest_url()}"
        response = self._request(url, "GET", headers={"Accept": MANIFEST_MEDIA_TYPE})
        if response.status_code == 404:
            raise ModelStoreError(f"{self.repository} has no model {reference}")
        self._expect(response, f"reading the manifest of {reference}", keep_body=True)
        return _read_capped(response, MAX_MANIFEST_BYTES, f"the manifest of {reference}")

    def _blob(self, container, digest: str, size: int) -> bytes:
        response = self._request(f"{self.client.prefix}://{container.get_blob_url(digest)}",
                                 "GET")  # fmt: skip
        self._expect(response, f"reading blob {digest}", keep_body=True)
        return _read_capped(response, size, f"blob {digest}")

    def _put_blob(self, container, digest: str, data: bytes) -> None:
        url = f"{self.client.prefix}://{container.get_blob_url(digest)}"
        exists = self._request(url, "HEAD")
        exists.close()
        if exists.status_code == 200:
            return
        url = f"{self.client.prefix}://{container.upload_blob_url()}"
        started = self._request(url, "POST")
        self._expect(started, f"starting the upload of blob {digest}")
        location = started.headers.get("Location", "")
        if location.startswith("/"):
            location = f"{self.client.prefix}://{self.host}{location}"
        separator = "&" if "?" in location else "?"
        response = self._request(f"{location}{separator}digest={digest}", "PUT", data=data,
                                 headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        self._expect(response, f"uploading blob {digest}")

    def _authenticate(self, container) -> None:
        if self.credentials is not None:
            self.client.auth.set_basic_auth(*self.credentials)
        else:
            self.client.auth.load_configs(container)

    def _request(
        self, url: str, method: str, headers: dict | None = None, data: bytes | None = None
    ) -> requests.Response:
        """One HTTP request, streamed, with timeouts, answering the registry's token
        challenge once (the ORAS client's own requests have no timeout and retry with
        sleeps of minutes)."""
        headers = {**self.client.headers, **(headers or {})}
        auth = self.client.auth
        if getattr(auth, "token", None):
            headers.update(auth.get_auth_header())

        def send(sent_headers: dict) -> requests.Response:
            return self.client.session.request(
                method, url, headers=sent_headers, data=data, stream=True,
                timeout=(CONNECT_TIMEOUT_SECONDS, READ_TIMEOUT_SECONDS), verify=self.tls_verify,
            )  # fmt: skip

        try:
            response = send(headers)
            if response.status_code in (401, 403):
                response.close()
                headers, changed = auth.authenticate_request(response, headers)
                if changed:
                    response = send(headers)
        except (requests.RequestException, ValueError) as error:
            raise ModelStoreError(f"{method} {url}: {error}") from None
        return response

    def _ping(self) -> None:
        """Fails fast when nothing answers (the ORAS client retries for minutes)."""
        url = f"{self.client.prefix}://{self.host}/v2/"
        try:
            requests.get(url, timeout=PING_TIMEOUT_SECONDS, verify=self.tls_verify)
        except requests.RequestException as error:
            raise ModelStoreError(f"the registry {self.host} does not answer: {error}") from None

    def _expect(self, response: requests.Response, doing: str, keep_body: bool = False) -> None:
        """A ModelStoreError unless the answer is a success; a success's body is closed
        unless the caller reads it."""
        if response.status_code in (200, 201, 202):
            if not keep_body:
                response.close()
            return
        if response.status_code not in (200, 201, 202):
            start = _read_capped(response, 300, "an error's body", truncate=True)
            raise ModelStoreError(f"{doing} in {self.repository}: HTTP {response.status_code} "
                                  f"{start.decode('utf-8', 'replace')}")  # fmt: skip


def _read_capped(
    response: requests.Response, limit: int, what: str, truncate: bool = False
) -> bytes:
    """At most `limit` bytes of the body (more is an error, or cut with `truncate`), read
    within TRANSFER_SECONDS: each read takes what has arrived (read1), so a registry that
    drips bytes meets the deadline between two of them."""
    chunks, total = [], 0
    deadline = time.monotonic() + TRANSFER_SECONDS
    try:
        while chunk := response.raw.read1(64 * 1024, decode_content=True):
            total += len(chunk)
            if total > limit:
                if truncate:
                    chunks.append(chunk[: limit - total + len(chunk)])
                    break
                raise ModelStoreError(f"{what} from the registry is larger than {limit} bytes")
            chunks.append(chunk)
            if time.monotonic() > deadline:
                raise ModelStoreError(f"{what} took more than {TRANSFER_SECONDS} s to arrive")
    except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as error:
        raise ModelStoreError(f"reading {what}: {error}") from None
    finally:
        response.close()
    return b"".join(chunks)


def _parse_metadata(digest: str, document: bytes) -> BundleMetadata:
    try:
        return BundleMetadata.model_validate_json(document)
    except ValueError as error:
        raise ModelStoreError(f"model {digest} has invalid metadata: {error}") from None
