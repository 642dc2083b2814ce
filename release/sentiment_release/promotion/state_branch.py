"""Evidence and ledgers kept on a git branch, so they outlive the machine or CI run that made them.

The branch (config/promotion.yaml state_branch) holds
    evidence/<id>.json    gate records (their reports stay with the run, as artifacts)
    ledger/<env>.jsonl    promotion ledgers
copied from the state directory. Both kinds are append-only, so merging is a union: an
evidence record is never rewritten, and of two copies of a ledger one must extend the
other. Anything else is a conflict and is refused; nothing is ever overwritten.

save: commit the state directory onto the local branch. It goes through a throwaway
      index, so the checked-out branch, its index and working tree are never touched.
lost: what the branch holds (locally, and as last fetched) that the state directory no
      longer does: the branch's history is the witness that a record was removed or a
      ledger cut back, which no signature can show (a cut ledger is still signed).
restore: merge the local branch back into the state directory.
pull: fetch the remote branch, merge it into the state directory and the local branch.
push: pull, then push; when another run pushed in between, do it again.
"""

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sentiment.files import atomic_write, create_new
from sentiment.serving.settings.schema import ENVIRONMENT_NAME
from sentiment_release.gates.evidence import ID_PATTERN
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.git import Git
from sentiment_release.support.process import Finished

PUSH_ATTEMPTS = 5
# Used only when git has no identity configured (as on a fresh CI runner).
FALLBACK_IDENTITY = {
    "GIT_AUTHOR_NAME": "sentiment-delivery",
    "GIT_AUTHOR_EMAIL": "sentiment-delivery@users.noreply.github.com",
    "GIT_COMMITTER_NAME": "sentiment-delivery",
    "GIT_COMMITTER_EMAIL": "sentiment-delivery@users.noreply.github.com",
}

Files = dict[str, bytes]


class StateConflictError(ReleaseError):
    pass


class StateTamperedError(ReleaseError):
    """The state directory lost evidence or ledger lines its branch holds."""


def is_state_file(path: str) -> bool:
    folder, _, name = path.partition("/")
    if folder == "evidence":
        return name.endswith(".json") and bool(ID_PATTERN.fullmatch(name.removesuffix(".json")))
    if folder == "ledger":
        return name.endswith(".jsonl") and bool(
            ENVIRONMENT_NAME.fullmatch(name.removesuffix(".jsonl"))
        )
    return False


def merge(*versions: Files) -> Files:
    """The union of several copies of the state; raises on anything but appending."""
    merged: Files = {}
    for files in versions:
        for path, content in files.items():
            known = merged.get(path)
            ledger = path.startswith("ledger/")
            if known is None or (ledger and content.startswith(known)):
                merged[path] = content
            elif known == content or (ledger and known.startswith(content)):
                continue
            elif ledger:
                raise StateConflictError(
                    f"{path} has diverged: two runs appended different entries to it. "
                    "Nothing was changed; compare the copies with `sentiment history` "
                    "and keep one by hand"
                )
            else:
                raise StateConflictError(
                    f"{path} differs between two copies; evidence is never rewritten, "
                    "so one of them was tampered with. Nothing was changed"
                )
    return merged


@dataclass
class StateBranch:
    repository: Path
    state_dir: Path
    branch: str
    remote: str

    @property
    def _local_ref(self) -> str:
        return f"refs/heads/{self.branch}"

    @property
    def _remote_ref(self) -> str:
        return f"refs/remotes/{self.remote}/{self.branch}"

    def save(self, message: str) -> str | None:
        """Commits the state directory onto the local branch; the new commit, or None."""
        self._refuse_a_code_branch()
        local = self._tip(self._local_ref)
        return self._commit([local] if local else [], message)[0]

    def lost(self) -> list[str]:
        """The state files the local branch holds that the state directory lost: an
        evidence record removed or changed, a ledger cut or rewritten. (A pull merges the
        remote branch into both, after checking its history only ever added.)"""
        here = self._local_files()
        lost = set()
        tip = self._tip(self._local_ref)
        if tip is not None:
            for path, content in self._branch_files(tip).items():
                found = here.get(path)
                if found is None:
                    lost.add(f"{path} (removed)")
                elif path.startswith("ledger/") and not found.startswith(content):
                    lost.add(f"{path} (cut or rewritten)")
                elif not path.startswith("ledger/") and found != content:
                    lost.add(f"{path} (changed)")
        return sorted(lost)

    def check_intact(self) -> None:
        """StateTamperedError when the state directory lost what the branch holds: a
        removed failure or a cut ledger never makes it as if it had not happened. A state
        directory with no evidence and no ledger at all is a fresh one (another checkout's,
        an act job's): removing everything leaves nothing to promote on, and the next
        save brings the branch's files back."""
        if not self._local_files():
            return  # a fresh state directory: its first save brings the branch's files in
        lost = self.lost()
        if lost:
            shown = ", ".join(lost[:5]) + (f" and {len(lost) - 5} more" if len(lost) > 5 else "")
            raise StateTamperedError(
                f"{self.state_dir} lost what branch {self.branch} holds: {shown}. Evidence "
                "and ledgers are never removed or cut: nothing relies on this state until "
                "`sentiment state restore` puts them back"
            )

    def restore(self) -> str:
        """Puts back into the state directory what the local branch holds (merging, as
        save does, so nothing here is lost either). `pull` brings the remote's."""
        self._refuse_a_code_branch()
        local = self._tip(self._local_ref)
        if local is None:
            return f"there is no branch {self.branch} here: nothing to restore"
        self._commit([local], "Restore")
        return f"restored {self.state_dir} from {self.branch} ({local[:12]})"

    def pull(self) -> str:
        """Merges the remote branch into the state directory; says what happened."""
        self._refuse_a_code_branch()
        if not self._fetch():
            return f"{self.remote} has no branch {self.branch} yet: nothing to pull"
        remote = self._tip(self._remote_ref)
        self._commit(self._tips(remote), f"Merge {self.remote}/{self.branch}")
        return f"pulled {self.remote}/{self.branch} ({remote[:12]}) into {self.state_dir}"

    def push(self, message: str) -> str:
        """Saves, merges what others pushed, pushes; retries when overtaken."""
        self._refuse_a_code_branch()
        for _ in range(PUSH_ATTEMPTS):
            remote = self._tip(self._remote_ref) if self._fetch() else None
            commit, files = self._commit(self._tips(remote), message)
            head = commit or self._tip(self._local_ref)
            if head is None:
                return "no evidence or ledger to push"
            if head == remote:
                return f"{self.remote}/{self.branch} is up to date ({head[:12]})"
            done = self._run(["push", "--quiet", self.remote, f"{head}:{self._local_ref}"])
            if done.ok:
                return f"pushed {len(files)} files to {self.remote}/{self.branch} ({head[:12]})"
            if b"rejected" not in done.stderr and b"fetch first" not in done.stderr:
                raise ReleaseError(f"git push failed: {done.output}")
        raise ReleaseError(
            f"{self.remote}/{self.branch} kept moving: gave up after {PUSH_ATTEMPTS} attempts"
        )

    def _refuse_a_code_branch(self) -> None:
        """The state branch holds evidence and ledgers only: the branch checked out here, or
        the remote's default one, would lose its code to the next save."""
        checked_out = self._run(["symbolic-ref", "--quiet", "--short", "HEAD"])
        remote_default = self._run(
            ["symbolic-ref", "--quiet", "--short", f"refs/remotes/{self.remote}/HEAD"]
        )
        code_branches = {
            checked_out.stdout.decode().strip(),
            remote_default.stdout.decode().strip().removeprefix(f"{self.remote}/"),
        }
        if self.branch in code_branches:
            raise ReleaseError(
                f"state_branch {self.branch!r} holds this repository's code: evidence and "
                "ledgers need a branch of their own (config/promotion.yaml state_branch)"
            )

    def _tips(self, remote: str | None) -> list[str]:
        """The commits to build on: the local branch and the remote one, unless one
        already contains the other."""
        local = self._tip(self._local_ref)
        if remote is None or remote == local:
            return [local] if local else []
        if local is None or self._is_ancestor(local, remote):
            return [remote]
        if self._is_ancestor(remote, local):
            return [local]
        return [local, remote]

    def _commit(self, parents: list[str], message: str) -> tuple[str | None, Files]:
        """Merges the parents' files with the state directory; commits when that adds
        anything, moves the local branch, writes the result back to the state directory."""
        versions = [self._branch_files(parent) for parent in parents]
        files = merge(*versions, self._local_files())
        self._write_local(files)
        if len(parents) == 1 and files == versions[0]:
            self._move_branch(parents[0])
            return None, files
        if not files:
            return None, files
        tree = self._write_tree(files)
        args = ["commit-tree", tree, *[arg for p in parents for arg in ("-p", p)], "-m", message]
        commit = self._git(args, env=self._identity()).decode().strip()
        self._move_branch(commit)
        return commit, files

    def _move_branch(self, commit: str) -> None:
        old = self._tip(self._local_ref) or "0" * 40
        if old != commit:
            # With the old value given, a concurrent move of the branch makes this fail.
            self._git(["update-ref", self._local_ref, commit, old])

    def _local_files(self) -> Files:
        files: Files = {}
        for folder, pattern in (("evidence", "*.json"), ("ledger", "*.jsonl")):
            for path in sorted((self.state_dir / folder).glob(pattern)):
                relative = f"{folder}/{path.name}"
                if is_state_file(relative):
                    files[relative] = path.read_bytes()
        return files

    def _write_local(self, files: Files) -> None:
        for relative, content in files.items():
            path = self.state_dir / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            try:
                if path.read_bytes() == content:
                    continue
            except FileNotFoundError:
                create_new(path, content)
                continue
            atomic_write(path, content)  # a ledger that merge() showed only grew

    def _branch_files(self, commit: str) -> Files:
        listing = self._git(["ls-tree", "-r", "-z", commit]).split(b"\0")
        entries = []
        for line in filter(None, listing):
            info, _, path = line.partition(b"\t")
            name = path.decode()
            if info.split()[1] == b"blob" and is_state_file(name):
                entries.append((name, info.split()[2].decode()))
        contents = self._read_blobs(blob for _, blob in entries)
        return {name: contents[blob] for name, blob in entries}

    def _read_blobs(self, blobs: Iterable[str]) -> dict[str, bytes]:
        wanted = list(dict.fromkeys(blobs))
        output = self._git(["cat-file", "--batch"], stdin="\n".join(wanted).encode() + b"\n")
        contents, position = {}, 0
        for blob in wanted:
            header_end = output.index(b"\n", position)
            size = int(output[position:header_end].split()[2])
            start = header_end + 1
            contents[blob] = output[start : start + size]
            position = start + size + 1
        return contents

    def _write_tree(self, files: Files) -> str:
        with tempfile.TemporaryDirectory() as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            lines = []
            for relative, content in sorted(files.items()):
                blob = self._git(["hash-object", "-w", "--stdin"], stdin=content)
                lines.append(f"100644 {blob.decode().strip()} 0\t{relative}")
            self._git(["update-index", "--index-info"], stdin="\n".join(lines).encode(), env=env)
            return self._git(["write-tree"], env=env).decode().strip()

    def _fetch(self) -> bool:
        """Fetches the remote branch (False when the remote has none), once its history
        shows it was only ever added to (StateTamperedError otherwise)."""
        before = self._tip(self._remote_ref)
        refspec = f"+{self._local_ref}:{self._remote_ref}"
        done = self._run(["fetch", "--quiet", self.remote, refspec])
        if not done.ok:
            if b"couldn't find remote ref" in done.stderr:
                return False
            raise ReleaseError(f"git fetch {self.remote} failed: {done.output}")
        after = self._tip(self._remote_ref)
        if before is not None and after != before and not self._is_ancestor(before, after):
            self._git(["update-ref", self._remote_ref, before])
            raise StateTamperedError(
                f"{self.remote}/{self.branch} was rewritten (force-pushed): it no longer "
                f"holds {before[:12]}, which this checkout fetched before. Nothing was merged; "
                "protect the branch and restore its history"
            )
        if after is not None:
            self._only_added(before, after)
        return True

    def _only_added(self, known: str | None, tip: str) -> None:
        """StateTamperedError unless every commit after `known` up to `tip` only adds
        evidence and only extends ledgers, compared with each of its parents."""
        span = f"{known}..{tip}" if known else tip
        for line in self._git(["rev-list", "--parents", span]).decode().splitlines():
            commit, *parents = line.split()
            for parent in parents:
                changes = self._git(["diff-tree", "-r", "--no-renames", "--name-status",
                                     parent, commit]).decode().splitlines()  # fmt: skip
                for change in changes:
                    status, _, path = change.partition("\t")
                    if status == "A" or not is_state_file(path):
                        continue
                    if status == "M" and path.startswith("ledger/"):
                        old, new = (
                            self._git(["show", f"{rev}:{path}"]) for rev in (parent, commit)
                        )
                        if new.startswith(old):
                            continue
                    raise StateTamperedError(
                        f"{self.remote}/{self.branch} commit {commit[:12]} "
                        f"{'removes' if status == 'D' else 'rewrites'} {path}: evidence and "
                        "ledgers are only ever added to. Nothing was merged"
                    )

    def _tip(self, ref: str) -> str | None:
        done = self._run(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"])
        return done.stdout.decode().strip() if done.ok else None

    def _is_ancestor(self, ancestor: str, descendant: str) -> bool:
        return self._run(["merge-base", "--is-ancestor", ancestor, descendant]).ok

    def _identity(self) -> dict[str, str]:
        configured = self._run(["config", "user.email"]).ok
        return {} if configured else FALLBACK_IDENTITY

    def _git(self, args: list[str], stdin: bytes = b"", env: dict[str, str] | None = None) -> bytes:
        done = self._run(args, stdin, env)
        if not done.ok:
            raise ReleaseError(f"git {args[0]} failed: {done.output}")
        return done.stdout

    def _run(
        self, args: list[str], stdin: bytes = b"", env: dict[str, str] | None = None
    ) -> Finished:
        return Git(self.repository).run(*args, input=stdin, env=env, check=False)
