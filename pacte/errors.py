"""Every error pacte raises, in one hierarchy.

    PacteError
    ├── ConfigError           the data directory, key file or policy file is unusable
    │   └── NotInitialised    `pacte init` has not been run for this data directory
    ├── InputError            a value supplied by the caller is malformed
    │   └── SourceError       a file to ingest cannot be read (encoding, quoting, size)
    ├── NotFound              no such record visible under the caller's purpose
    ├── PolicyDenied          the policy refuses the request (always audited)
    │   ├── Unauthenticated   no principal, or an unknown or revoked API key
    │   ├── PurposeRequired   the request names no purpose
    │   ├── PurposeNotGranted a purpose the principal may not claim
    │   │   └── UnknownPurpose a purpose the policy does not have (nothing secret)
    │   ├── PrivacyBudgetSpent a DP release would pass the analyst's epsilon budget
    │   ├── LinkRefused       a transparency link is expired, altered or not ours
    │   ├── TooManyAttempts   too many failed sign-ins from one address
    │   └── Forbidden         the principal's role may not do this
    ├── IntegrityError        stored data or the audit trail fails verification
    ├── DecryptionError       a ciphertext could not be opened (one opaque message)
    ├── KeyVaultError         a key is missing or destroyed, or the master key is wrong
    └── StorageError          the store failed; `retryable` says if trying again may help
        ├── CorruptStore      a database file is damaged or is not a pacte store
        ├── Conflict          a write would break a uniqueness the store enforces
        └── RevocationNotPropagated  a key revoked in the store, its stamp not moved

Each error has a stable `code` (used in GraphQL `extensions` and CLI output) and a
message that never contains a personal value.
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "Conflict",
    "CorruptStore",
    "DecryptionError",
    "Forbidden",
    "InputError",
    "IntegrityError",
    "KeyVaultError",
    "LinkRefused",
    "NotFound",
    "NotInitialised",
    "PacteError",
    "PolicyDenied",
    "PrivacyBudgetSpent",
    "PurposeNotGranted",
    "PurposeRequired",
    "RevocationNotPropagated",
    "SourceError",
    "StorageError",
    "TooManyAttempts",
    "Unauthenticated",
    "UnknownPurpose",
]


class PacteError(Exception):
    """Root of every error pacte raises."""

    code = "INTERNAL"


class ConfigError(PacteError):
    """The data directory, key file or policy file is missing or unusable."""

    code = "CONFIG"


class NotInitialised(ConfigError):
    """The data directory has not been initialised with `pacte init`."""

    code = "NOT_INITIALISED"


class InputError(PacteError, ValueError):
    """A value supplied by the caller is malformed."""

    code = "BAD_INPUT"


class SourceError(InputError):
    """A file to ingest cannot be read as a whole: its message names file and line."""

    code = "BAD_SOURCE"


class NotFound(PacteError):
    """No such record is visible under the caller's purpose."""

    code = "NOT_FOUND"


class PolicyDenied(PacteError):
    """The policy refuses the request."""

    code = "FORBIDDEN"


class Unauthenticated(PolicyDenied):
    """No principal, or an unknown or revoked API key."""

    code = "UNAUTHENTICATED"


class PurposeRequired(PolicyDenied):
    """The request names no purpose."""

    code = "PURPOSE_REQUIRED"


class PurposeNotGranted(PolicyDenied):
    """The principal may not claim the purpose (or it is unknown: see UnknownPurpose)."""

    code = "PURPOSE_NOT_GRANTED"


class UnknownPurpose(PurposeNotGranted):
    """The purpose is not in the policy (which purposes exist is public: nothing leaks)."""

    code = "UNKNOWN_PURPOSE"


class PrivacyBudgetSpent(PolicyDenied):
    """A differentially private release would spend more than the principal's budget."""

    code = "PRIVACY_BUDGET_SPENT"


class LinkRefused(PolicyDenied):
    """A transparency link that is expired, altered, or not for this server."""

    code = "LINK_REFUSED"


class TooManyAttempts(PolicyDenied):
    """Too many failed sign-ins from one address in a short time."""

    code = "RATE_LIMITED"


class Forbidden(PolicyDenied):
    """The principal's role may not perform this operation."""

    code = "FORBIDDEN"


class IntegrityError(PacteError):
    """Stored data or the audit trail fails verification."""

    code = "INTEGRITY"


class DecryptionError(PacteError):
    """A ciphertext could not be decrypted."""

    code = "DECRYPTION"

    def __init__(self, message: str = "decryption failed") -> None:
        # One opaque message whatever the cause: a distinguishing message is an oracle.
        super().__init__(message)


class KeyVaultError(PacteError):
    """A key is missing, destroyed or insecurely stored, or the master key is wrong."""

    code = "KEY"


class StorageError(PacteError):
    """The store failed; `retryable` says whether trying again may help."""

    code = "STORAGE"

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class RevocationNotPropagated(StorageError):
    """A key revoked in the store whose stamp could not move: run the revocation again."""

    code = "REVOCATION_NOT_PROPAGATED"
    change_made = True  # the trail records the revocation as made, not as failed


class CorruptStore(StorageError):
    """A database file is damaged or is not a pacte store."""

    code = "CORRUPT_STORE"

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class Conflict(StorageError):
    """A write would break a uniqueness the store enforces (an event id stored twice)."""

    code = "CONFLICT"

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)
