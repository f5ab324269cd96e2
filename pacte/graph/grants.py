"""What the policy decides for a role under a purpose, whoever asks: made once.

A `Grant` holds what depends only on the policy version, the principal's role and the
purpose: the purpose, which fields of each node kind may be opened (and why the others
are withheld), which data categories may be used, the actions already admitted, and
what a customer-360 prefetch reads. A session starts from its grant rather than from the
policy (pacte.graph.session). Nothing of any customer is in it: consent and visibility
are decided per request (G5).

Caches that cannot lie (issue #16, part 4): grants are keyed by value, (policy version,
role, purpose), and bounded; only admissions make a grant, a refusal is decided and
recorded every time. See docs/door-cost.md.
"""

from __future__ import annotations

from pacte.graph.model import NODE_KINDS, Field
from pacte.graph.operations import Action, Role
from pacte.graph.policy import Purpose
from pacte.graph.store import Hop
from pacte.graph.views import Withheld

__all__ = ["MAX_CATEGORIES", "MAX_GRANTS", "Grant", "Split", "field_reason", "grant_of",
           "granted", "split_fields"]

Split = tuple[tuple[str, ...], tuple[Withheld, ...]]
# Bound of a grant's memo of categories.
MAX_CATEGORIES = 4096
# Bound of the grants kept (emptied when full; refilled by the next requests).
MAX_GRANTS = 1024
# The categories a customer's 360 read may prefetch.
_PURCHASES = "user.financial"
_BEHAVIOUR = "user.behavior"


def field_reason(f: Field, purpose: Purpose, role: str) -> str | None:
    """Why `f` is withheld from `role` under `purpose`, or None when it may be returned."""
    if f.category is None:
        return None
    if role == Role.AUDITOR:
        return "auditors never receive personal fields"
    if not purpose.may_use(f.category):
        return f"purpose {purpose.id} may not use {f.category}"
    return None


def split_fields(fields: tuple[Field, ...], purpose: Purpose, role: str) -> Split:
    """The names of `fields` that `role` may have under `purpose`, and the others with why."""
    allowed: list[str] = []
    withheld: list[Withheld] = []
    for f in fields:
        reason = field_reason(f, purpose, role)
        if reason is None:
            allowed.append(f.name)
        else:
            withheld.append(Withheld(f.name, reason))
    # A tuple: a grant's split is shared by every request of its role and purpose.
    return tuple(allowed), tuple(withheld)


class Grant:
    """What the policy decides for one role under one purpose (see the module).

    Made by `grant_of` once a principal is admitted to the purpose; `granted` finds it
    again for the next request. Grants of an older policy version are never asked for
    again, and go when the bound empties the cache.
    """

    __slots__ = ("admitted", "categories", "hops", "needs_consent", "purpose",
                 "retention_days", "splits")

    def __init__(self, purpose: Purpose, role: str) -> None:
        self.purpose = purpose
        self.needs_consent = purpose.needs_consent
        self.retention_days = purpose.retention_days
        self.splits = {name: split_fields(kind.fields, purpose, role)
                       for name, kind in NODE_KINDS.items()}
        # Category -> may be used; filled as asked, at most MAX_CATEGORIES.
        self.categories: dict[str, bool] = {}
        # The actions admitted so far (pacte.graph.operations): one per declared action.
        self.admitted: set[Action] = set()
        auditor = role == Role.AUDITOR
        self.hops = _C360_HOPS[not auditor and purpose.may_use(_BEHAVIOUR),
                               not auditor and purpose.may_use(_PURCHASES)]


# (policy version, role, purpose) -> its grant.
_GRANTS: dict[tuple[str, str, str | None], Grant] = {}


def granted(version: str, role: str, purpose_id: str | None) -> Grant | None:
    """The grant made for these three, if one is kept."""
    return _GRANTS.get((version, role, purpose_id))


def grant_of(version: str, role: str, purpose: Purpose) -> Grant:
    """A new grant of `purpose` to `role` under policy `version`, kept (bounded)."""
    grant = Grant(purpose, role)
    if len(_GRANTS) >= MAX_GRANTS:
        _GRANTS.clear()
    _GRANTS[(version, role, purpose.id)] = grant
    return grant


def _customer_360_hops(*, interactions: bool, purchases: bool) -> tuple[Hop, ...]:
    """What to read around a customer: only what the purpose may use, and the consents."""
    hops = [Hop("CONSENTED")]
    if interactions:
        # A default page of interactions and one more (its hasNext needs it); a larger
        # page is read from the server as usual. With the products they are about.
        hops.append(Hop("HAD", limit=21, nodes=True, then=("ABOUT",), then_nodes=True))
    if purchases:
        hops.append(Hop("BOUGHT", nodes=True))
    return tuple(hops)


# The four answers, made once.
_C360_HOPS = {(i, p): _customer_360_hops(interactions=i, purchases=p)
              for i in (False, True) for p in (False, True)}
