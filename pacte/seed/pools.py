"""Word pools the generator draws from, built once at import.

Everything here is invented or generic (common given names and surnames, street
words, US cities with rough coordinates); nothing describes a real person. Pools
are tuples so draws are `pool[int(random() * len(pool))]`, the cheapest draw there
is, which keeps generation far from being the bottleneck of seeding.
"""

from __future__ import annotations

__all__ = [
    "AREA_CODES",
    "CITIES",
    "CONSENT_SOURCES",
    "FIRST_NAMES",
    "LAST_NAMES",
    "SEGMENTS",
    "STREETS",
    "STREET_SUFFIXES",
    "WITHDRAW_SOURCES",
    "City",
    "weighted",
]


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES: tuple[str, ...] = _words("""
Ava Liam Olivia Noah Emma Oliver Sophia Elijah Isabella Lucas Mia Mason Amelia Ethan
Harper Logan Evelyn James Abigail Aiden Emily Benjamin Ella Jacob Elizabeth Michael
Camila Alexander Luna Daniel Sofia Henry Avery Jackson Mila Sebastian Aria Jack
Scarlett Owen Penelope Samuel Layla Matthew Chloe Joseph Victoria Levi Madison David
Eleanor John Grace Wyatt Nora Carter Riley Julian Zoey Luke Hannah Grayson Hazel
Isaac Lily Jayden Ellie Theodore Violet Gabriel Lillian Anthony Zoe Dylan Stella Leo
Aurora Lincoln Natalie Jaxon Emilia Asher Everly Christopher Leah Josiah Aubrey
Andrew Willow Thomas Addison Joshua Lucy Ezra Audrey Hudson Bella Charles Nova
Caleb Brooklyn Isaiah Paisley Ryan Savannah Nathan Claire Adrian Skylar Christian
Aaliyah Maya Kenji Yuki Priya Arjun Mei Wei Fatima Omar Amara Kwame Ingrid Lars
Nadia Mateo Valentina Diego Lucia Rafael Ana Tomas Elena Ivan Katya Hugo Chiara
""")

LAST_NAMES: tuple[str, ...] = _words("""
Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez
Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson
White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young Allen King Wright
Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera Campbell
Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins
Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper
Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez
Wood James Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel
Myers Long Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan Bell Coleman
Butler Henderson Barnes Fisher Vasquez Simmons Romero Jordan Patterson Alexander
Hamilton Graham Reynolds Griffin Wallace West Cole Hayes Bryant Herrera Gibson Ellis
Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison Fernandez
Okafor Mensah Haddad Nakamura Tanaka Chen Wang Singh Kumar Novak Kowalski Larsen
""")

STREETS: tuple[str, ...] = _words("""
Maple Oak Pine Cedar Elm Willow Birch Walnut Chestnut Spruce Laurel Magnolia Juniper
Hawthorn Aspen Sycamore Poplar Alder Hickory Cypress Lake Hill River Meadow Forest
Park Sunset Highland Valley Ridge Spring Harbor Bay Brook Mill Orchard Garden Church
Market Union Liberty Franklin Lincoln Washington Jefferson Madison Adams Jackson
""")

STREET_SUFFIXES: tuple[str, ...] = (
    "St", "Ave", "Rd", "Blvd", "Ln", "Dr", "Ct", "Pl", "Way", "Ter",
)


City = tuple[str, str, float, float, str]  # name, state, latitude, longitude, zip prefix

CITIES: tuple[City, ...] = (
    ("Springfield", "IL", 39.7817, -89.6501, "627"),
    ("Portland", "OR", 45.5152, -122.6784, "972"),
    ("Austin", "TX", 30.2672, -97.7431, "787"),
    ("Denver", "CO", 39.7392, -104.9903, "802"),
    ("Madison", "WI", 43.0731, -89.4012, "537"),
    ("Raleigh", "NC", 35.7796, -78.6382, "276"),
    ("Tucson", "AZ", 32.2226, -110.9747, "857"),
    ("Columbus", "OH", 39.9612, -82.9988, "432"),
    ("Boise", "ID", 43.6150, -116.2023, "837"),
    ("Richmond", "VA", 37.5407, -77.4360, "232"),
    ("Omaha", "NE", 41.2565, -95.9345, "681"),
    ("Albany", "NY", 42.6526, -73.7562, "122"),
    ("Savannah", "GA", 32.0809, -81.0912, "314"),
    ("Spokane", "WA", 47.6588, -117.4260, "992"),
    ("Burlington", "VT", 44.4759, -73.2121, "054"),
    ("Santa Fe", "NM", 35.6870, -105.9378, "875"),
    ("Des Moines", "IA", 41.5868, -93.6250, "503"),
    ("Providence", "RI", 41.8240, -71.4128, "029"),
    ("Sacramento", "CA", 38.5816, -121.4944, "958"),
    ("Nashville", "TN", 36.1627, -86.7816, "372"),
    ("Tampa", "FL", 27.9506, -82.4572, "336"),
    ("Pittsburgh", "PA", 40.4406, -79.9959, "152"),
    ("Minneapolis", "MN", 44.9778, -93.2650, "554"),
    ("Salt Lake City", "UT", 40.7608, -111.8910, "841"),
    ("Anchorage", "AK", 61.2181, -149.9003, "995"),
    ("Honolulu", "HI", 21.3069, -157.8583, "968"),
    ("Charleston", "SC", 32.7765, -79.9311, "294"),
    ("Louisville", "KY", 38.2527, -85.7585, "402"),
    ("Kansas City", "MO", 39.0997, -94.5786, "641"),
    ("Baltimore", "MD", 39.2904, -76.6122, "212"),
)

# Area codes for fictional numbers: every seeded phone is NXX-555-01XX, the range
# the North American numbering plan keeps for fiction, so none can ring a person.
AREA_CODES: tuple[str, ...] = _words("""
201 202 205 206 208 212 213 214 215 216 217 301 303 305 312 313 314 315 317 402 404
405 406 407 408 410 412 414 415 501 502 503 504 505 512 513 515 601 602 603 605 608
612 614 615 617 702 703 704 706 707 712 713 801 802 803 804 808 810 812 813 901 907
""")


def weighted(*pairs: tuple[str, int]) -> tuple[str, ...]:
    """A flat table where each value appears `weight` times: one index draws by weight."""
    return tuple(v for v, w in pairs for _ in range(w))


SEGMENTS: tuple[str, ...] = weighted(
    ("new", 15), ("regular", 40), ("loyal", 20), ("vip", 5), ("at_risk", 12), ("dormant", 8),
)

CONSENT_SOURCES: tuple[str, ...] = (
    "signup_form", "preference_center", "store_kiosk", "email_link", "app_settings",
    "call_center",
)
WITHDRAW_SOURCES: tuple[str, ...] = (
    "preference_center", "unsubscribe_link", "app_settings", "call_center",
)
