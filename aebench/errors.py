"""Errors a user can cause and fix: the CLI prints them as one line and exits with code 2."""


class AebenchError(Exception):
    """Bad input: an unknown name, a malformed config, a missing or corrupt file."""


class NonFiniteLoss(RuntimeError):
    """A training loss became NaN or infinite; the run is recorded as failed."""


class NonFiniteOutput(NonFiniteLoss):
    """A trained model produced NaN or infinite outputs (samples, translations); the run is recorded as failed."""
