"""The graph model as data: node kinds, edge kinds and the field catalogue.

Later layers read this catalogue rather than hard-coding field names: the codec
encrypts the fields marked `personal`, the blind index covers those marked
`blind_index`, the policy grants access by `category` (fideslang names), and the
GraphQL schema exposes what is listed here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "CHANNELS",
    "EDGE_KINDS",
    "INTERACTION_KINDS",
    "MERGED_PART",
    "NODE_KINDS",
    "PART_CONSENT",
    "CategoryName",
    "ConsentStatus",
    "EdgeKind",
    "Field",
    "NodeKind",
    "age_band",
    "field",
    "personal_fields",
]

CategoryName = str

CHANNELS: tuple[str, ...] = (
    "email", "phone", "chat", "sms", "web", "app", "store", "social", "iot",
)
INTERACTION_KINDS: tuple[str, ...] = (
    "purchase", "support", "review", "visit", "campaign", "telemetry",
)


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Field:
    """One property of a node or edge kind.

    `personal` fields are encrypted before they reach a store (G1); `blind_index`
    fields also get an HMAC token for exact-match lookups; `category` is the
    fideslang data category the policy grants or withholds (G4). A field with
    category None is structural (ids, times, kinds) and is never withheld.
    """

    name: str
    category: CategoryName | None
    personal: bool = False
    blind_index: bool = False
    type: str = "str"
    doc: str = ""


@dataclass(frozen=True, slots=True)
class NodeKind:
    name: str
    fields: tuple[Field, ...]
    # Nodes of this kind hold personal data of one customer: their ciphertexts are
    # bound to and keyed by that customer, and erasure removes them.
    customer_owned: bool = False
    doc: str = ""

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.name} has no field {name!r}")


@dataclass(frozen=True, slots=True)
class EdgeKind:
    name: str
    src: str
    dst: str
    fields: tuple[Field, ...] = ()
    doc: str = ""


def _f(name: str, category: str | None, *, personal: bool = False, blind: bool = False,
       type: str = "str", doc: str = "") -> Field:
    return Field(name, category, personal=personal, blind_index=blind, type=type, doc=doc)


NODE_KINDS: dict[str, NodeKind] = {
    k.name: k
    for k in (
        NodeKind(
            "Customer",
            (
                _f("name", "user.name", personal=True),
                _f("email", "user.contact.email", personal=True, blind=True),
                _f("phone", "user.contact.phone_number", personal=True, blind=True),
                _f("address", "user.contact.address", personal=True),
                _f("birth_date", "user.demographic.date_of_birth", personal=True),
                _f("age_band", "user.demographic.age_band", personal=True,
                   doc="decade of age at the last write, derived from birth_date"),
                _f("segment", "user.behavior", doc="marketing segment, not identifying"),
                _f("created_at", None, type="int", doc="epoch microseconds"),
            ),
            customer_owned=True,
            doc="A person the company serves.",
        ),
        NodeKind(
            "Product",
            (
                _f("sku", None),
                _f("name", None),
                _f("category", None),
                _f("price", None, type="float"),
            ),
            doc="An item of the catalogue; holds no personal data.",
        ),
        NodeKind(
            "Interaction",
            (
                _f("channel", "user.behavior"),
                _f("kind", "user.behavior"),
                _f("occurred_at", None, type="int", doc="epoch microseconds"),
                _f("event_id", None, doc="caller's idempotency key"),
                _f("summary", "user.content", personal=True, doc="free text"),
                _f("amount", "user.financial", type="float"),
            ),
            customer_owned=True,
            doc="One contact with a customer on one channel.",
        ),
        NodeKind(
            "Device",
            (
                _f("device_type", "user.device"),
                _f("model", "user.device"),
                _f("location", "user.location", personal=True, doc="geolocation"),
                _f("telemetry", "user.device", personal=True,
                   doc="usage duration, times of use, energy (JSON)"),
            ),
            customer_owned=True,
            doc="A connected device a customer owns (e.g. a smart bulb).",
        ),
        NodeKind(
            "Purpose",
            (
                _f("parent", None),
                _f("legal_basis", None),
                _f("description", None),
            ),
            doc="A reason for processing, mirrored from the policy file.",
        ),
        NodeKind(
            "Principal",
            (
                _f("name", None),
                _f("role", None),
                _f("purposes", None, type="json"),
                _f("key_hash", None),
                _f("created_at", None, type="int"),
                _f("revoked_at", None, type="int"),
            ),
            doc="An app or a person calling pacte.",
        ),
        NodeKind(
            "PrincipalUse",
            (_f("last_used_at", None, type="int"),),
            doc="When a principal's key was last used, to the day (kept apart from the "
                "principal so that noting a use never rewrites a revocation).",
        ),
    )
}

# A customer merged into another (identity resolution, issue #17) keeps its node under
# this kind, as it was, so that the merge can be undone: a part is no customer of its
# own (lists, counts and lookups skip it), and its id resolves to its survivor through
# its SAME_AS edge. Its consent history is kept under PART_CONSENT, out of the rule's
# sight: the merged customer's consent is decided on the survivor (see
# pacte.identity.merge).
MERGED_PART = "MergedCustomer"
PART_CONSENT = "CONSENTED_PART"

EDGE_KINDS: dict[str, EdgeKind] = {
    k.name: k
    for k in (
        EdgeKind(
            "CONSENTED", "Customer", "Purpose",
            (
                _f("status", None),
                _f("until", None, type="int"),
                _f("source", None),
                _f("policy_version", None),
                _f("proof", None, doc="SHA-256 of the proof text"),
            ),
            doc="One state in a customer's consent history for a purpose; never overwritten.",
        ),
        EdgeKind("HAD", "Customer", "Interaction"),
        EdgeKind("ABOUT", "Interaction", "Product"),
        EdgeKind("BOUGHT", "Customer", "Product", (_f("amount", "user.financial", type="float"),)),
        EdgeKind("REVIEWED", "Customer", "Product", (_f("rating", "user.content", type="int"),)),
        EdgeKind("OWNS", "Customer", "Device"),
        EdgeKind("REFERRED", "Customer", "Customer"),
        EdgeKind("SAME_AS", "Customer", "Customer", doc="identity resolution"),
    )
}


def age_band(birth_date: str, *, today: str) -> str:
    """The decade of age ('30-39') on `today`, both ISO dates; '' when unparseable."""
    try:
        by, bm, bd = (int(x) for x in birth_date.split("-"))
        ty, tm, td = (int(x) for x in today.split("-"))
    except ValueError:
        return ""
    age = ty - by - ((tm, td) < (bm, bd))
    low = max(0, age // 10 * 10)
    return f"{low}-{low + 9}"


def field(kind: str, name: str) -> Field:
    """The catalogue entry for `kind.name` (node or edge kind)."""
    if kind in NODE_KINDS:
        return NODE_KINDS[kind].field(name)
    for f in EDGE_KINDS[kind].fields:
        if f.name == name:
            return f
    raise KeyError(f"{kind} has no field {name!r}")


def personal_fields(kind: str) -> tuple[Field, ...]:
    """The fields of a node kind that must be encrypted at rest."""
    return tuple(f for f in NODE_KINDS[kind].fields if f.personal)
