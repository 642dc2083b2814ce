"""GitHub's artifact store, stood in for under act (make act): upload-artifact and
download-artifact v4 as the workflows use them, on a directory of this machine
($ACT_ARTIFACTS, one run's). The rules kept are GitHub's: a name is unique within a run
(an upload under a name that exists fails: 409 Conflict), hidden files are left out unless
asked for, the paths' least common ancestor is the artifact's root, and a download of a
name that does not exist fails.
https://github.com/actions/upload-artifact#inputs
https://github.com/actions/download-artifact#inputs
"""

import glob
import hashlib
import os
import shutil
import sys
from pathlib import Path

GLOB = set("*?[")


def store() -> Path:
    root = os.environ.get("ACT_ARTIFACTS")
    if not root:
        sys.exit("::error::ACT_ARTIFACTS is not set: make act gives each run an artifact store")
    return Path(root)


def search_root(pattern: str) -> Path:
    parts = Path(pattern).parts
    plain = []
    for part in parts:
        if GLOB & set(part):
            return Path(*plain) if plain else Path(".")
        plain.append(part)
    return Path(pattern).parent if Path(pattern).is_file() else Path(pattern)


def hidden(path: Path) -> bool:
    return any(part.startswith(".") and part not in (".", "..") for part in path.parts)


def upload(name: str, paths: str, include_hidden: bool, if_no_files: str, output: Path) -> None:
    patterns = [line.strip() for line in paths.splitlines() if line.strip()]
    files: set[Path] = set()
    for pattern in patterns:
        for found in glob.glob(pattern, recursive=True, include_hidden=True):
            path = Path(found)
            members = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            files |= {m for m in members if include_hidden or not hidden(m)}
    target = store() / name
    if not files:
        message = f"No files were found with the provided path: {paths.strip()}."
        if if_no_files == "error":
            sys.exit(f"::error::{message}")
        if if_no_files == "warn":
            print(f"::warning::{message} No artifacts will be uploaded.")
        return
    if target.exists():
        sys.exit(
            f"::error::Failed to CreateArtifact: (409) Conflict: an artifact with this "
            f"name already exists on the workflow run: {name}"
        )
    root = Path(os.path.commonpath([search_root(p).resolve() for p in patterns]))
    for file in sorted(files):
        destination = target / file.resolve().relative_to(root)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(file, destination)
    artifact_id = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)
    with output.open("a") as handle:
        handle.write(f"artifact-id={artifact_id}\n")
    print(f"Artifact {name} ({len(files)} files) stored in {target}")


def download(name: str, path: str) -> None:
    source = store() / name
    if not source.is_dir():
        sys.exit(f"::error::Unable to download artifact(s): Artifact not found for name: {name}")
    shutil.copytree(source, Path(path or "."), dirs_exist_ok=True)
    print(f"Artifact {name} downloaded to {path or '.'}")


if __name__ == "__main__":
    env = os.environ
    if sys.argv[1] == "upload":
        upload(
            env["INPUT_NAME"],
            env["INPUT_PATH"],
            env["INPUT_HIDDEN"] == "true",
            env["INPUT_IF_NO_FILES"],
            Path(env["GITHUB_OUTPUT"]),
        )
    else:
        download(env["INPUT_NAME"], env["INPUT_PATH"])
