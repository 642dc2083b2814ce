"""Failures the delivery commands report as a message and a non-zero exit."""


class DeliveryError(Exception):
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
    """The container started but never became ready; the message ends with its logs."""


class ManifestError(DeliveryError):
    pass
