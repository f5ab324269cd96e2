"""What the door does per row of a read (docs/door-cost.md): it opens only the rows it
returns, and a product's view is kept only with the very node it was made from."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pacte.features import products as products_feature
from pacte.graph.store import Node
from tests.helpers import build_world, record_decrypts


def test_the_row_read_past_a_page_is_not_decrypted(tmp_path: Path, store_uri: str | None,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A page reads one row more than it returns, to tell whether more follow: that row
    is not decrypted (nothing is opened for a row nobody returns), with or without a
    channel filter, and the page is the same as before."""
    world = build_world(tmp_path, store_uri=store_uri)
    cid = world.customers["none"]
    op = world.rt.operator_session("service")
    for n in range(6):
        op.record_interaction(customer_id=cid, channel="web" if n % 2 else "email",
                              kind="visit", event_id=f"row-{n}", summary=f"note {n}",
                              occurred_at=world.clock.now - timedelta(hours=n))
    opened = record_decrypts(world, monkeypatch)
    session = world.rt.session(world.principals["app"], "service")
    page = session.interactions(cid, first=3)
    assert len(page.items) == 3 and page.has_next
    assert opened == ["summary"] * 3
    assert page.end_cursor == page.items[-1].cursor
    opened.clear()
    web = session.interactions(cid, first=2, channel="web")
    assert [v.fields["channel"] for v in web.items] == ["web", "web"] and web.has_next
    assert opened == ["summary"] * 2
    # The last page (the world's own interaction and three of these): nothing past it,
    # every row returned and opened.
    opened.clear()
    rest = session.interactions(cid, first=10, after=page.end_cursor)
    assert not rest.has_next and len(rest.items) == 4 == len(opened)
    world.rt.close()


def test_a_product_view_is_kept_only_with_its_node() -> None:
    """The same node, or one equal to it (read again), answers the same view; a
    changed node gets its own."""
    node = Node("Product", "p_kept", {"sku": "K-1", "name": "Kettle", "category": "home",
                                      "price": 20})
    first = products_feature.product_view(node)
    assert products_feature.product_view(node) is first
    read_again = Node("Product", "p_kept", dict(node.props))
    assert products_feature.product_view(read_again) is first
    assert (first.name, first.price) == ("Kettle", 20.0)
    changed = Node("Product", "p_kept", {"sku": "K-1", "name": "Kettle 2",
                                         "category": "home", "price": 25})
    again = products_feature.product_view(changed)
    assert (again.name, again.price) == ("Kettle 2", 25.0)
    assert products_feature.product_view(node).name == "Kettle"  # not the changed one's
