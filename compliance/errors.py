"""Errors a user can act on. The CLI prints their message on one line and exits non-zero."""


class ComplianceError(Exception):
    """Base class: anything raised as a ComplianceError is shown to the user without a traceback."""

    exit_code = 1


class AudioError(ComplianceError):
    """The input is not usable audio: corrupt, empty, silent, not audio, or too long."""

    exit_code = 2


class ModelError(ComplianceError):
    """A model is missing, fails verification, or cannot be loaded."""

    exit_code = 3


class RuleError(ComplianceError):
    """A rule file is malformed. The message names the file, the rule id and the field."""

    exit_code = 4


class TranscriptError(ComplianceError):
    """A transcript file (call JSON) given to the rules is not readable or not well formed. The
    message names the file and the field."""

    exit_code = 2
