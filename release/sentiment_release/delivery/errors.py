"""Failures of building, storing and running images."""

from sentiment_release.support.errors import ReleaseError


class DeliveryError(ReleaseError):
    """Something the user can act on; the message says what and how."""


class NoEngineError(DeliveryError):
    pass


class EngineCommandError(DeliveryError):
    """The engine ran and refused; the message carries its own error text."""


class ContainerStartError(DeliveryError):
    """The engine answers but could not run the container."""


class PortInUseError(DeliveryError):
    pass


class ImageNotFoundError(DeliveryError):
    pass


class NotReadyError(DeliveryError):
    """The service started but never became ready; the message says why."""


class ManifestError(DeliveryError):
    pass
