"""The product catalogue: a few hundred invented products, the same for every seed.

The catalogue does not depend on the seed on purpose: seeding one store twice with
different seeds upserts the same products instead of duplicating the catalogue.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pacte.graph.store import Node
from pacte.seed.ids import id_maker

__all__ = ["CATALOGUE_SIZE", "Product", "catalogue", "product_nodes"]

CATALOGUE_SIZE = 320

_BRANDS = ("Lumen", "Halcyon", "Norda", "Vireo", "Quill", "Tessel", "Orrin", "Brisa",
           "Kelvo", "Marlo")
_LINES = ("Mini", "Pro", "Max", "Air", "Lite", "One", "Plus", "S2", "X", "Go")
_LINE_FACTOR = (0.8, 1.4, 1.8, 1.1, 0.7, 1.0, 1.2, 1.3, 1.6, 0.9)

# (category, item, base price, device type or "" when the item is not connected)
_ITEMS: tuple[tuple[str, str, float, str], ...] = (
    ("lighting", "Smart Bulb", 14.0, "smart_bulb"),
    ("lighting", "Light Strip", 39.0, "light_strip"),
    ("lighting", "Desk Lamp", 45.0, ""),
    ("heating", "Thermostat", 149.0, "thermostat"),
    ("heating", "Radiator Valve", 59.0, "radiator_valve"),
    ("audio", "Smart Speaker", 89.0, "speaker"),
    ("audio", "Headphones", 129.0, ""),
    ("audio", "Soundbar", 249.0, ""),
    ("security", "Indoor Camera", 69.0, "camera"),
    ("security", "Video Doorbell", 119.0, "doorbell"),
    ("security", "Door Sensor", 24.0, ""),
    ("energy", "Smart Plug", 19.0, "smart_plug"),
    ("energy", "Energy Monitor", 99.0, "energy_meter"),
    ("kitchen", "Kettle", 49.0, ""),
    ("kitchen", "Coffee Maker", 119.0, ""),
    ("kitchen", "Air Fryer", 99.0, ""),
    ("accessories", "Charging Cable", 12.0, ""),
    ("accessories", "Wall Mount", 29.0, ""),
    ("accessories", "Battery Pack", 35.0, ""),
    ("services", "Installation Service", 79.0, ""),
    ("services", "Extended Warranty", 39.0, ""),
    ("services", "Cloud Storage Plan", 59.0, ""),
)


@dataclass(frozen=True, slots=True)
class Product:
    id: str
    sku: str
    name: str
    category: str
    price: float
    device_type: str  # "" when the product is not a connected device


def catalogue() -> tuple[Product, ...]:
    """Every product, in a fixed order (ids are stable across runs and seeds)."""
    rnd = random.Random("pacte-seed-catalogue")
    combos = [(b, i, li) for b in range(len(_BRANDS)) for i in range(len(_ITEMS))
              for li in range(len(_LINES))]
    ids = id_maker("p", "catalogue")
    out: list[Product] = []
    for k, (b, i, li) in enumerate(rnd.sample(combos, CATALOGUE_SIZE)):
        category, item, base, device = _ITEMS[i]
        # Prices end in .99 like real ones; a little noise keeps lines of one item apart.
        price = round(max(1.0, int(base * _LINE_FACTOR[li] * rnd.uniform(0.9, 1.1))) + 0.99, 2)
        out.append(Product(
            id=ids(k),
            sku=f"{category[:3].upper()}-{k:05d}",
            name=f"{_BRANDS[b]} {item} {_LINES[li]}",
            category=category,
            price=price,
            device_type=device,
        ))
    return tuple(out)


def product_nodes(products: tuple[Product, ...]) -> list[Node]:
    return [Node("Product", p.id, {"sku": p.sku, "name": p.name, "category": p.category,
                                   "price": p.price}) for p in products]
