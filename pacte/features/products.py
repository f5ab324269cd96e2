"""Catalogue products and what relates customers to them: purchases, buyers, reviews,
and the customers' referrals and devices, within the purpose's retention."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from pacte.clock import from_micros
from pacte.features.door import Door
from pacte.graph.checks import check_id, encode_id_cursor, id_cursor, page_size
from pacte.graph.model import NODE_KINDS
from pacte.graph.operations import Action
from pacte.graph.store import Edge, Node
from pacte.graph.views import CustomerView, DeviceView, Page, ProductView, ReviewView

__all__ = ["CONTENT", "DEVICES", "PURCHASES", "buyers", "devices", "product", "product_view",
           "product_views", "products", "products_by_id", "products_of", "referrals",
           "reviews"]

_CUSTOMER = NODE_KINDS["Customer"]

_DEVICE = NODE_KINDS["Device"]
# What a read of purchases names among its fields.
_BOUGHT = ("BOUGHT",)
# The categories that relations carry: purchases are financial, devices are device data.
PURCHASES = "user.financial"
DEVICES = "user.device"
# A rating is content the customer wrote.
CONTENT = "user.content"


def products_of(door: Door, customer_id: str) -> list[ProductView]:
    """What a customer bought within the purpose's retention (financial data)."""
    if not _admitted(door, Action.PRODUCT_LIST, customer_id, PURCHASES):
        return []
    # The purchases with their products, in one read where the store joins.
    views: list[ProductView] = []
    seen: set[str] = set()
    for _, node, _ in door._reach(customer_id, "BOUGHT", since=door._horizon()):
        if node is not None and node.kind == "Product" and node.id not in seen:
            seen.add(node.id)
            views.append(product_view(node))
    door._note(Action.PRODUCT_LIST, [customer_id], _BOUGHT)
    return views


def product_views(door: Door, ids: Sequence[str]) -> list[ProductView]:
    """The catalogue products among `ids`, in order (no personal data)."""
    nodes = door._read_nodes(list(ids))
    return [product_view(nodes[i]) for i in ids if i in nodes and nodes[i].kind == "Product"]


def product(door: Door, product_id: str) -> ProductView | None:
    """A catalogue product; holds no personal data, but its use is still audited."""
    check_id(product_id)
    views = product_views(door, [product_id])
    door._audit(door._record(Action.PRODUCT_READ, extra={"product": product_id}))
    return views[0] if views else None


def products(door: Door, *, first: int = 20, after: str | None = None) -> Page[ProductView]:
    """The catalogue in id order (keyset pagination); holds no personal data."""
    first = page_size(first)
    page = door._products_page(id_cursor(after), first + 1)
    views = [product_view(n) for n in page[:first]]
    door._audit(door._record("product.catalogue", extra={"products": [v.id for v in views]}))
    end = encode_id_cursor(views[-1].id) if views else None
    return Page(views, end, len(page) > first)


def products_by_id(door: Door, product_ids: Sequence[str]) -> dict[str, ProductView]:
    """Many catalogue products in one round trip and one audit record."""
    ids = list(dict.fromkeys(product_ids))
    for pid in ids:
        check_id(pid)
    views = {v.id: v for v in product_views(door, ids)}
    door._audit(door._record(Action.PRODUCT_READ, extra={"products": sorted(views)}))
    return views


def buyers(door: Door, product_id: str) -> list[CustomerView]:
    """Customers who bought a product, limited to those visible under this purpose."""
    door._gate(Action.PRODUCT_BUYERS)
    check_id(product_id)
    if not door._category_ok(PURCHASES):
        door._audit(door._record(Action.PRODUCT_BUYERS, outcome="withheld"))
        return []
    horizon = door._horizon()
    ids = list(dict.fromkeys(e.src for e in door._edges(product_id, "BOUGHT", direction="in")
                             if e.at >= horizon))
    views = [door._customer_view(n) for n in door._visible_customers(ids)]
    door._audit(door._record(Action.PRODUCT_BUYERS, subjects=[v.id for v in views],
                             fields=views[0].fields.keys() if views else ()))
    return views


def referrals(door: Door, customer_id: str, *, fields: Collection[str] | None = None
              ) -> list[CustomerView]:
    """The visible customers this customer referred, within the purpose's retention.

    `fields` names the fields to open (default: every one the purpose may use).
    """
    door._gate(Action.CUSTOMER_REFERRALS)
    names = door._pick(_CUSTOMER, fields)
    door._require_visible(Action.CUSTOMER_REFERRALS, customer_id)
    horizon = door._horizon()
    ids = [e.dst for e in door._edges(customer_id, "REFERRED") if e.at >= horizon]
    views = [door._customer_view(n, names) for n in door._visible_customers(ids)]
    door._audit(door._record(Action.CUSTOMER_REFERRALS,
                             subjects=[customer_id, *(v.id for v in views)],
                             fields=views[0].fields.keys() if views else ()))
    return views


def reviews(door: Door, customer_id: str) -> list[ReviewView]:
    """The products a customer rated within the purpose's retention, newest first.

    Under a purpose that may not use what customers write (`CONTENT`), the list is
    empty and the refusal on record, as for devices.
    """
    edges = _relations(door, Action.REVIEW_LIST, customer_id, CONTENT, "REVIEWED")
    if edges is None:
        return []
    views = [ReviewView(e.dst, from_micros(e.at), _rating(e.props.get("rating")))
             for e in edges]
    door._audit(door._record(Action.REVIEW_LIST, subjects=[customer_id], fields=["REVIEWED"]))
    return views


def devices(door: Door, customer_id: str) -> list[DeviceView]:
    """The devices a customer registered within the purpose's retention."""
    edges = _relations(door, Action.DEVICE_LIST, customer_id, DEVICES, "OWNS")
    if edges is None:
        return []
    ids = [e.dst for e in edges]
    nodes = door._read_nodes(ids)
    allowed, withheld = door._split(_DEVICE)
    views = [DeviceView(i, door._open(nodes[i], allowed), withheld) for i in ids if i in nodes]
    door._audit(door._record(Action.DEVICE_LIST, subjects=[customer_id], fields=allowed))
    return views


def _relations(door: Door, action: Action, customer_id: str, category: str, edge_type: str
               ) -> list[Edge] | None:
    """A visible customer's `edge_type` edges within the purpose's retention; None (and
    the refusal on record) under a purpose that may not use `category`."""
    if not _admitted(door, action, customer_id, category):
        return None
    horizon = door._horizon()
    return [e for e in door._edges(customer_id, edge_type) if e.at >= horizon]


def _admitted(door: Door, action: Action, customer_id: str, category: str) -> bool:
    """Whether `action` may read a visible customer's relations of `category`; False
    with the refusal on record; NotFound (on record) for a customer it may not see."""
    door._gate(action)
    door._require_visible(action, customer_id)
    if not door._category_ok(category):
        door._audit(door._record(action, subjects=[customer_id], outcome="withheld"))
        return False
    return True


def _rating(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def product_view(node: Node) -> ProductView:
    """The view of a product node: made once per product as read, for every request.

    A product is read by most customer-360s; its view is kept with the node it was made
    from and found again while the node read is equal to it (kind, id, props, owner): a
    changed product reads as another node and gets a new view. Products hold catalogue
    data only, no customer's; the view is frozen, so sharing it is safe.
    """
    kept = _PRODUCTS.get(node.id)
    if kept is not None and (kept[0] is node or kept[0] == node):
        return kept[1]
    props = node.props
    price = props.get("price")
    view = ProductView(node.id, str(props.get("sku", "")), str(props.get("name", "")),
                       str(props.get("category", "")),
                       float(price) if isinstance(price, int | float) else None)
    if len(_PRODUCTS) >= _MAX_PRODUCTS:
        _PRODUCTS.clear()  # bounded; refilled by the next reads
    _PRODUCTS[node.id] = (node, view)
    return view


# Product id -> the node last read of it and its view (see `product_view`).
_PRODUCTS: dict[str, tuple[Node, ProductView]] = {}
_MAX_PRODUCTS = 4096
