"""The release tooling wired together for one checkout: its configuration (delivery,
training, the promotion policy), the container engine and registry, the deploy target,
evidence and ledgers, the gate runner, the promoter and the pipeline. The CLI asks it
for what a command needs; each piece is made on first use, once."""

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sentiment.model import BundleMetadata, ModelFolder, Scorer
from sentiment.model.publish import copy_bundle, set_current
from sentiment.serving.settings import ConfigError, Settings, load_settings
from sentiment_release.delivery.api_keys import ApiKeyStore
from sentiment_release.delivery.champion import ChampionPin, PinnedModel, read_pin, write_pin
from sentiment_release.delivery.config import DeliverySettings, load_delivery_settings
from sentiment_release.delivery.engine import Engine, detect_engine
from sentiment_release.delivery.errors import DeliveryError
from sentiment_release.delivery.image import build_image
from sentiment_release.delivery.kubernetes import Kubernetes
from sentiment_release.delivery.local import LocalContainers
from sentiment_release.delivery.manifests import required_tool
from sentiment_release.delivery.model_store import ModelStore, StoredModel
from sentiment_release.delivery.records import BuildRecord, ModelRef, Records
from sentiment_release.delivery.references import PINNED, pinned_reference
from sentiment_release.delivery.registry_server import LocalRegistry
from sentiment_release.delivery.registry_tags import tag_in_registry
from sentiment_release.delivery.targets import DeployTarget
from sentiment_release.gates.evidence import EvidenceRecord
from sentiment_release.gates.evidence_store import EvidenceStore
from sentiment_release.gates.isolation import Isolation
from sentiment_release.gates.reference import reference_bundle
from sentiment_release.gates.runner import GateRunner
from sentiment_release.gates.subject import image_subject
from sentiment_release.gates.trust import TrustedKeys, load_trust_settings
from sentiment_release.promotion.ledger import Ledger
from sentiment_release.promotion.pipeline import Pipeline, PipelineReport
from sentiment_release.promotion.policy import Policy, load_policy
from sentiment_release.promotion.promote import Promoter
from sentiment_release.promotion.rules import superseded
from sentiment_release.promotion.signing_step import (
    Batch,
    Signed,
    SigningProcess,
    SigningStep,
    sign_pending,
)
from sentiment_release.promotion.state_branch import StateBranch
from sentiment_release.support.clock import compact, utc_now
from sentiment_release.support.errors import ReleaseError
from sentiment_release.support.git import Git
from sentiment_release.support.project import Project
from sentiment_release.support.provenance import run_description
from sentiment_release.training import TrainingConfig, data_dir_for, load_training_config

if TYPE_CHECKING:
    from sentiment_release.training import Comparison, TrainingResult


# Under the state directory: each environment's audit log and outcome store here.
MONITORING_DIR = "monitoring"
# The UAT's golden reviews: one of the sets a challenger is compared with the champion on.
UAT_EXPECTATIONS = Path("tests") / "uat" / "expectations.yaml"


@dataclass(frozen=True)
class Retrained:
    comparison: "Comparison"
    reports: list[Path]
    stored: StoredModel | None  # pushed (and pinned), when accepted and published


class Workspace:
    def __init__(
        self,
        project: Project,
        log: Callable[[str], None] = lambda message: None,
        data_dir: Path | None = None,
    ):
        self.project = project
        self.log = log
        # The training data, when not the configured one (--data-dir).
        self.data_dir_override = data_dir

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc_info: object) -> None:
        if "target" in self.__dict__:
            self.target.close()

    # Configuration.

    @cached_property
    def delivery(self) -> DeliverySettings:
        return load_delivery_settings(self.project.config_dir)

    @cached_property
    def policy(self) -> Policy:
        return load_policy(self.project.policy_file)

    @cached_property
    def training(self) -> TrainingConfig:
        return load_training_config(self.project.config_dir)

    def service_settings(self, environment: str | None = None) -> Settings:
        try:
            return load_settings(environment, self.project.service_config_dir)
        except ConfigError as error:
            raise ReleaseError(str(error)) from None

    # State on this machine.

    @cached_property
    def git(self) -> Git:
        return Git(self.project.root)

    def model_folder(self, environment: str | None = None) -> ModelFolder:
        return ModelFolder(self.service_settings(environment).model.bundles_dir)

    @cached_property
    def records(self) -> Records:
        return Records(self.delivery.state_dir)

    @cached_property
    def store(self) -> EvidenceStore:
        state = self.delivery.state_dir
        return EvidenceStore(state / "evidence", self.keyring, state / "pending" / "evidence")

    @cached_property
    def keyring(self) -> TrustedKeys:
        """config/trust.yaml's keys, and this machine's (in the state directory)."""
        config_dir = self.project.config_dir
        return TrustedKeys(
            load_trust_settings(config_dir), config_dir, self.delivery.state_dir / "keys"
        )

    @cached_property
    def api_keys(self) -> ApiKeyStore:
        """Each environment's API key hashes and gate key on this machine."""
        return ApiKeyStore(self.delivery.state_dir / "api-keys")

    @cached_property
    def ledger(self) -> Ledger:
        state = self.delivery.state_dir
        return Ledger(state / "ledger", self.keyring, state / "pending" / "ledger")

    @cached_property
    def signing(self) -> SigningStep | None:
        """How gate evidence is signed when a gate or promotion here ends: by this
        machine's keys in a process of their own, where they count; None where a later
        step signs it with the environment's key (GitHub)."""
        if not self.keyring.settings.local_keys:
            return None
        return SigningProcess(self.keyring, self.project.root, self.log)

    def sign(
        self,
        environment: str,
        batch: Batch | None,
        private_pem: bytes | None = None,
        source: str = "",
    ) -> Signed:
        """The signing step (`sentiment sign`): `batch` (what the run said it wrote), else
        `environment`'s unsigned entries and the records they name, checked and signed
        with the key given, else this machine's; then committed to the local state
        branch, whose history from then on holds them."""
        self.policy.environment(environment)
        self.check_state_intact()
        signer = self.keyring.signer(environment, private_pem, source)
        signed = sign_pending(environment, signer, self.store, self.ledger,
                              self.policy.lock_timeout_seconds, batch)  # fmt: skip
        self.save_state()
        return signed

    def discard_unsigned(self, environment: str) -> str:
        """Sets aside what waits unsigned for `environment` (records of gates run there
        and its ledger entries), so it takes promotions again; said where it went."""
        self.policy.environment(environment)
        moment = compact(utc_now())
        target = self.delivery.state_dir / "pending" / "discarded" / f"{moment}-{environment}"
        moved = []
        with self.ledger.locked(environment, self.policy.lock_timeout_seconds):
            for record, _ in self.store.unsigned(environment):
                moved.append(self.store.pending_root / f"{record.id}.json")
            pending = self.ledger.pending_path(environment)
            if pending.exists():
                moved.append(pending)
            for path in moved:
                target.mkdir(parents=True, exist_ok=True)
                path.rename(target / path.name)
        if not moved:
            return f"{environment}: nothing waits unsigned"
        return f"{environment}: set aside {len(moved)} unsigned file(s) in {target}"

    def check_state_intact(self) -> None:
        """ReleaseError when the state directory lost evidence or ledger lines the state
        branch holds (locally, and as last fetched)."""
        self.state_branch.check_intact()

    @cached_property
    def state_branch(self) -> StateBranch:
        return StateBranch(
            self.project.root, self.delivery.state_dir, self.policy.state_branch,
            self.policy.state_remote,
        )  # fmt: skip

    # Images and where they run.

    @cached_property
    def engine(self) -> Engine:
        return detect_engine(self.delivery.engine, self.delivery.registry.tls_verify)

    def ensure_registry(self) -> None:
        if self.delivery.registry.local_server:
            registry = LocalRegistry(self.delivery.registry.host, self.delivery.state_dir)
            self.log(registry.ensure_running())

    @cached_property
    def target(self) -> DeployTarget:
        """config/delivery.yaml's deploy target, named in the log once."""
        deploy = self.delivery.deploy
        target: DeployTarget
        if deploy.target == "kubernetes":
            target = Kubernetes(
                required_tool(deploy.kubernetes.kubectl), deploy.kubernetes.rollout_timeout_seconds,
                self.project.environments_dir, self.project.service_config_dir, self.records,
                self.api_keys,
            )  # fmt: skip
        else:
            target = LocalContainers(
                self.engine, deploy.local, self.records, self.policy.ports,
                self.project.service_config_dir, self.api_keys,
                self.delivery.state_dir / MONITORING_DIR,
            )  # fmt: skip
        self.log(f"deploy target: {target.describe()}")
        return target

    def image_reference(self, image: str | None) -> str:
        """REGISTRY/NAME@sha256:... from --image (a digest or a pinned reference), else the
        latest build here."""
        if image:
            return pinned_reference(image, self.delivery.registry.image_name)
        latest = self.records.latest_build()
        if latest is None:
            raise DeliveryError("no image has been built here: run `make build` or pass --image")
        return latest.image

    # The steps.

    def train(
        self,
        environment: str | None = None,
        if_missing: bool = False,
        skip_bad_lines: bool | None = None,
    ) -> "TrainingResult | None":
        """Trains (None when `if_missing` and a model is current already)."""
        # scikit-learn takes about a second to import: only training pays for it.
        from sentiment_release.training import train_model

        registry = self.model_folder(environment)
        if if_missing and registry.current_version():
            return None
        data_dir = data_dir_for(self.training, self.data_dir_override)
        return train_model(self.training, data_dir, registry, self.git.revision(), skip_bad_lines)

    def monitoring_dir(self, environment: str) -> Path:
        """Where ENV's service keeps its audit log and outcome store on this machine (the
        local container's volume, and `make serve`'s)."""
        return self.delivery.state_dir / MONITORING_DIR / environment

    @cached_property
    def model_store(self) -> ModelStore:
        return ModelStore(self.delivery.registry.model_name, self.delivery.registry.tls_verify)

    @property
    def champion(self) -> ChampionPin:
        return read_pin(self.project.champion_file)

    def push_model(self, version: str = "current") -> StoredModel:
        """Pushes a bundle of this machine's registry to the model repository."""
        self.ensure_registry()
        registry = self.model_folder()
        return self.model_store.push(registry.path_of(registry.resolve(version)))

    def pull_model(self, digest: str | None = None, make_current: bool = False) -> BundleMetadata:
        """Brings the bundle `digest` (default: the champion) into this machine's registry."""
        pin = self.champion
        digest = digest or pin.digest
        if digest is None:
            raise ReleaseError(
                f"no champion is pinned in {self.project.champion_file}: "
                "`make publish-model` pushes this machine's model and pins it"
            )
        self.ensure_registry()
        registry = self.model_folder()
        metadata = self.model_store.pull(digest, registry)
        # A pinned digest (champion or challenger) must be the version pinned beside it.
        pinned = {pin.digest: pin.version}
        if pin.challenger is not None:
            pinned[pin.challenger.digest] = pin.challenger.version
        expected = pinned.get(digest)
        if expected is not None and metadata.version != expected:
            raise ReleaseError(
                f"{self.project.champion_file} pins {digest} as version {expected}, "
                f"but that digest is version {metadata.version}"
            )
        if make_current:
            set_current(registry, metadata.version)
        return metadata

    def pin_model(self, digest: str) -> ChampionPin:
        """Pins a model of the repository as the champion, once its bundle is whole (a
        challenger pinned beside the old champion is dropped with it)."""
        metadata = self.pull_model(digest)
        pin = ChampionPin(digest=digest, version=metadata.version)
        write_pin(self.project.champion_file, pin)
        return pin

    def pin_challenger(self, digest: str | None) -> ChampionPin:
        """Pins a model of the repository as the challenger images carry beside the
        champion (None: no challenger)."""
        pin = self.champion
        challenger = None
        if digest is not None:
            metadata = self.pull_model(digest)
            challenger = PinnedModel(digest=digest, version=metadata.version)
        try:
            pinned = pin.model_copy(update={"challenger": challenger})
            pinned = ChampionPin.model_validate(pinned.model_dump())
        except ValueError as error:
            raise ReleaseError(f"{self.project.champion_file}: {error}") from None
        write_pin(self.project.champion_file, pinned)
        return pinned

    def champion_model(self) -> tuple[BundleMetadata, str | None]:
        """The champion as this machine's current model, and its digest: pulled where one
        is pinned; while none is, this machine's current model (trained if there is none)."""
        pin = self.champion
        if pin.digest is not None:
            return self.pull_model(pin.digest, make_current=True), pin.digest
        result = self.train(if_missing=True)
        if result is not None and result.published is None:
            failures = "; ".join(str(failure) for failure in result.gate_failures)
            raise ReleaseError(f"the model failed its quality gate: {failures}")
        return self.model_folder().metadata(), None

    def retrain(self, publish: bool = False) -> "Retrained":
        """A challenger trained on the base data and the older feedback, compared with the
        pinned champion (training.challenger); accepted, it becomes this machine's current
        model, and with `publish` it is pushed and pinned. The report's files are listed."""
        from sentiment_release.training import challenge, write_report

        registry = self.model_folder()
        pin = self.champion
        champion = None
        if pin.digest is not None:
            champion = Scorer(registry.load(self.pull_model(pin.digest).version))
        data_dir = data_dir_for(self.training, self.data_dir_override)
        with tempfile.TemporaryDirectory(prefix="retrain-") as scratch:
            done = challenge(self.training, data_dir, champion, self.git.revision(),
                             self.project.root / UAT_EXPECTATIONS, Path(scratch))  # fmt: skip
            comparison = done.comparison
            reports = write_report(comparison, self.delivery.state_dir / "reports" / "retrain")
            stored = None
            if comparison.accepted:
                copy_bundle(done.folder, done.version, registry)
                set_current(registry, done.version)
                if publish:
                    stored = self.push_model(done.version)
                    self.pin_model(stored.digest)
        return Retrained(comparison, reports, stored)

    def build(self) -> BuildRecord:
        """The image of the champion where one is pinned, else of the current model."""
        self.ensure_registry()
        pin = self.champion
        version, digest, challenger = "current", None, None
        if pin.digest is not None:
            version, digest = self.pull_model(pin.digest).version, pin.digest
        else:
            # Pushed all the same: the image's gates take their reference model from the model
            # repository by this digest, never from the image
            # (sentiment_release/gates/reference.py).
            stored = self.push_model()
            version, digest = stored.metadata.version, stored.digest
            self.log(f"no champion is pinned ({self.project.champion_file}): building this "
                     f"machine's current model, pushed as {digest}")  # fmt: skip
        if pin.challenger is not None:
            pulled = self.pull_model(pin.challenger.digest)
            challenger = ModelRef(version=pulled.version, sha256=pulled.sha256,
                                  digest=pin.challenger.digest)  # fmt: skip
        return build_image(
            self.engine, self.delivery, self.project, self.model_folder(), self.records,
            self.policy.names, version, digest, challenger,
        )  # fmt: skip

    @cached_property
    def gates(self) -> GateRunner:
        return GateRunner(
            self.store, self.project,
            lambda subject, scratch: reference_bundle(
                subject, self.model_store, self.engine, scratch
            ),
            lambda: data_dir_for(self.training, self.data_dir_override), self.api_keys.gate_key,
            Isolation(
                tuple(self.keyring.settings.check_environment),
                (self.keyring.local_dir, self.api_keys.root),
            ),
        )  # fmt: skip

    def source_gate(self, environment: str | None = None) -> EvidenceRecord:
        """The first environment's gate, on the working tree and the current model."""
        first = self.policy.first
        if environment not in (None, first.name):
            raise ReleaseError(
                f"{environment}'s gate runs inside `sentiment promote --to {environment}`, "
                f"against the image it deploys; only {first.name}'s runs on its own"
            )
        if self.signing is not None:
            self.signing.check(first.name)
        self.gates.preflight()
        # Where a champion is pinned, the gate checks it as pulled by its digest (every
        # byte checked), whatever this machine's current model is.
        pin = self.champion
        version = self.pull_model(pin.digest).version if pin.digest else "current"
        record = self.gates.run_source_gate(first.name, first.gate, self.model_folder(), version)
        if self.signing is not None:
            self.signing(first.name, Batch({record.id: self.store.written[record.id]}))
        else:
            self.log(f"{first.name}: its gate's evidence waits unsigned; `sentiment sign "
                     f"{first.name}` signs it")  # fmt: skip
        return record

    @cached_property
    def promoter(self) -> Promoter:
        self.ensure_registry()
        return Promoter(
            policy=self.policy,
            target=self.target,
            gates=self.gates,
            subject_of=lambda reference: image_subject(self.engine, reference),
            store=self.store,
            ledger=self.ledger,
            tags=self.git,
            repository=self.delivery.registry.image_name,
            tag_release=lambda image, tag: tag_in_registry(
                image, tag, self.delivery.registry.tls_verify
            ),
            log=self.log,
            tag_on_release=self.delivery.registry.tag_releases,
            sign=self.signing,
            state_intact=self.check_state_intact,
        )

    def superseded(self, environment: str, image: str | None) -> str | None:
        """Why the image may not go on to `environment` because a newer commit is there
        already (promotion.rules.superseded), or None. What runs there is read from the
        target and its image's labels; a running image that cannot be read counts as none."""
        self.policy.environment(environment)
        reference = self.image_reference(image)
        self.ensure_registry()
        subject = image_subject(self.engine, reference)
        running = None
        running_image = self.target.status(environment).image
        pinned = PINNED.fullmatch(running_image or "")
        # Only an image of the configured repository can supersede (not one put there by hand).
        ours = pinned is not None and pinned["name"] == self.delivery.registry.image_name
        if ours and running_image != reference:
            try:
                running = image_subject(self.engine, running_image)
            except ReleaseError as error:
                self.log(f"{environment}: what runs ({running_image}) cannot be read: {error}")
        return superseded(environment, subject, running, self.ledger, self.git)

    def pipeline(self) -> Pipeline:
        return Pipeline(
            policy=self.policy,
            champion=self._champion_step,
            source_gate=self.source_gate,
            build=self.build,
            promoter=self.promoter,
            tags=self.git,
            log=self.log,
        )

    def publish_report(self, report: PipelineReport, also: Path | None = None) -> list[Path]:
        """The pipeline's report as Markdown: in the state directory, in `also` if given, and
        appended to $GITHUB_STEP_SUMMARY in CI. The files written."""
        document = report.markdown("Pipeline")
        targets = [self.delivery.state_dir / "pipeline-summary.md", *([also] if also else [])]
        for target in targets:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(document, encoding="utf-8")
        if os.environ.get("GITHUB_STEP_SUMMARY"):
            with open(os.environ["GITHUB_STEP_SUMMARY"], "a", encoding="utf-8") as handle:
                handle.write(document)
        return targets

    def save_state(self) -> str | None:
        """Commits the evidence and ledgers onto the local state branch; the commit, or
        None when it holds them already."""
        return self.state_branch.save(run_description())

    def _champion_step(self) -> str:
        metadata, digest = self.champion_model()
        where = f"champion {digest[:19]}" if digest else "not pinned"
        return f"model {metadata.version} ({where}), accuracy {metadata.metrics['accuracy']:.3f}"
