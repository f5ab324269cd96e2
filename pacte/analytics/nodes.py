"""Node ids and kinds shared by a projection's detailed graph and its k-anonymous release.

>>> node_id("product", "p_lamp")
'product:p_lamp'
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["CUSTOMER", "KINDS", "node_id", "pseudonym"]

CUSTOMER = "customer"
# `category` nodes appear only in releases, where products are generalised.
KINDS = ("customer", "product", "category", "channel", "segment", "device")
_PSEUDONYM_HEX = 24  # 96 bits: collisions are out of reach for any customer base


def node_id(kind: str, name: str) -> str:
    """The graph node id of a product, category, channel, segment or device type.

    >>> node_id("category", "lighting")
    'category:lighting'
    """
    return f"{kind}:{name}"


def pseudonym(key: bytes, customer_id: str) -> str:
    """The node id standing for `customer_id` under `key` (an HMAC-SHA256, truncated).

    >>> pseudonym(b"k" * 32, "c_1") == pseudonym(b"k" * 32, "c_1") != pseudonym(b"j" * 32, "c_1")
    True
    """
    digest = hmac.new(key, customer_id.encode("utf-8"), hashlib.sha256).hexdigest()
    return node_id(CUSTOMER, digest[:_PSEUDONYM_HEX])
