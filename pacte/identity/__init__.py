"""Identity resolution: which records are one person (issue #17, part 3).

Identifiers (emails, phones, external ids) are normalised here and kept in the store
only as keyed tokens (blind-index entries, G1); `pacte.ingest` asks these modules
which customer a record belongs to.
"""

from pacte.identity.normalise import IDENTIFIER_KINDS, Identifier, normalise_identifier

__all__ = ["IDENTIFIER_KINDS", "Identifier", "normalise_identifier"]
