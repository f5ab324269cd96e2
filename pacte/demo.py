"""The demo world: seeded customers, three API keys kept between runs, and one sample
customer whose record and trail show what pacte does.

The sample customer is created through the door by the demo app, as a real app would
create one: so its `myDataUses` lists the app's uses (created, consents, purchases,
reads), not the bulk seeding, and it has consents and recommendations to show.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from pacte.errors import Conflict, PacteError
from pacte.runtime import Pacte
from pacte.seed.catalogue import catalogue

__all__ = ["DEMO_KEYS", "KEYS_FILE", "Demo", "prepare_demo"]

KEYS_FILE = "demo-keys.json"
DEMO_KEYS = (
    ("demo-app", "app", ("service", "self_service", "marketing", "marketing.email",
                         "personalization")),
    ("demo-auditor", "auditor", ("legal",)),
    ("demo-analyst", "analyst", ("analytics",)),
)
_SAMPLE = {"name": "Ada Demo", "email": "ada.demo@example.com", "phone": "+441632960001",
           "address": "1 Sample Street, Springfield", "birth_date": "1990-12-10",
           "segment": "loyal"}
_SAMPLE_CONSENTS = ("marketing", "marketing.email", "personalization")
_SAMPLE_PURCHASES = 6  # best sellers: enough consenting co-buyers (>= 5) to recommend from


@dataclass
class Demo:
    keys: dict[str, str] = field(default_factory=dict)  # role -> API key
    sample: str = ""  # the sample customer's id
    reused: bool = False  # the keys came from the keys file of an earlier run
    seeded: dict[str, int] | None = None  # what this run seeded, if it did


def prepare_demo(rt: Pacte, *, customers: int = 2000, seed: int = 0) -> Demo:
    """Seed an empty store, then reuse (or create and save, 0600) the demo keys and the
    sample customer."""
    demo = Demo()
    if rt.operator_session("service").stats().get("Customer", 0) == 0:
        demo.seeded = rt.seed(customers, seed=seed)
    path = rt.data_dir / KEYS_FILE
    saved = _load(path) or {}
    keys = saved.get("keys")
    if isinstance(keys, dict) and _valid(rt, keys):
        demo.keys, demo.reused = {str(r): str(k) for r, k in keys.items()}, True
    else:
        for name, role, purposes in DEMO_KEYS:
            _principal, demo.keys[role] = rt.create_principal(name=name, role=role,
                                                              purposes=purposes)
    sample = saved.get("sample")
    demo.sample = sample if isinstance(sample, str) else _create_sample(rt, demo.keys["app"])
    if not demo.reused or sample != demo.sample:
        _save(path, {"keys": demo.keys, "sample": demo.sample})
    return demo


def _create_sample(rt: Pacte, app_key: str) -> str:
    app = rt.authenticate(app_key)
    service = rt.session(app, "service")
    try:
        customer = service.upsert_customer(**_SAMPLE)
    except Conflict:
        # Made by an earlier run whose keys file is gone: the same person, found again.
        found = service.customer_by_email(_SAMPLE["email"], fields=())
        if found is None:
            raise
        return found.id
    own = rt.session(app, "self_service")
    for purpose in _SAMPLE_CONSENTS:
        own.grant_consent(customer.id, purpose, source="demo sign-up form")
    service = rt.session(app, "service")
    for n, product in enumerate(catalogue()[:_SAMPLE_PURCHASES]):
        service.record_interaction(customer_id=customer.id, channel="web", kind="purchase",
                                   event_id=f"demo-sample-order-{n}", product_id=product.id,
                                   amount=product.price, summary="order placed online")
    return customer.id


def _load(path: Path) -> dict[str, object] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _valid(rt: Pacte, keys: dict[object, object]) -> bool:
    if set(keys) != {role for _, role, _ in DEMO_KEYS}:
        return False
    try:
        for key in keys.values():
            rt.authenticate(str(key))
    except PacteError:
        return False  # revoked (or from another data directory): make new ones
    return True


def _save(path: Path, data: dict[str, object]) -> None:
    # The keys are secrets: readable by the owner only, from the first byte.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    path.chmod(0o600)
