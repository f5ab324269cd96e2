"""pacte: a privacy-preserving customer knowledge graph.

    from pacte import Pacte

    with Pacte.open("pacte-data") as rt:
        session = rt.session(rt.authenticate(api_key), "marketing.email")
        customer = session.customer("c_0123456789ab")   # None unless they opted in

Everything that touches customer data goes through a purpose-bound `Session` (G10);
what an operator does to the directory itself (API keys, key rotations, checkpoints,
migration) are `Pacte`'s audited methods (pacte.admin). The store, the key vault and
the trail are offered by no public name.
"""

from pacte.errors import (
    ConfigError,
    Conflict,
    CorruptStore,
    DecryptionError,
    Forbidden,
    InputError,
    IntegrityError,
    KeyVaultError,
    LinkRefused,
    NotFound,
    NotInitialised,
    PacteError,
    PolicyDenied,
    PrivacyBudgetSpent,
    PurposeNotGranted,
    PurposeRequired,
    RevocationNotPropagated,
    SourceError,
    StorageError,
    TooManyAttempts,
    Unauthenticated,
    UnknownPurpose,
)
from pacte.graph.policy import Policy, Purpose
from pacte.graph.principals import Principal
from pacte.graph.session import Session
from pacte.graph.views import (
    ConsentChange,
    ConsentView,
    CustomerView,
    DeviceView,
    Explanation,
    InteractionView,
    Page,
    ProductView,
    ProjectedCustomer,
    Withheld,
)
from pacte.runtime import Pacte

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "Conflict",
    "ConsentChange",
    "ConsentView",
    "CorruptStore",
    "CustomerView",
    "DecryptionError",
    "DeviceView",
    "Explanation",
    "Forbidden",
    "InputError",
    "IntegrityError",
    "InteractionView",
    "KeyVaultError",
    "LinkRefused",
    "NotFound",
    "NotInitialised",
    "Pacte",
    "PacteError",
    "Page",
    "Policy",
    "PolicyDenied",
    "Principal",
    "PrivacyBudgetSpent",
    "ProductView",
    "ProjectedCustomer",
    "Purpose",
    "PurposeNotGranted",
    "PurposeRequired",
    "RevocationNotPropagated",
    "Session",
    "SourceError",
    "StorageError",
    "TooManyAttempts",
    "Unauthenticated",
    "UnknownPurpose",
    "Withheld",
    "__version__",
]
