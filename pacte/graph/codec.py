"""The one place where personal fields are sealed on the way in and opened on the way out.

Every write path (the session's upserts, interactions, bulk ingest) passes its
plaintext nodes through `Codec.seal`, and every read path asks `Codec.open` for the
fields it is allowed to return, so a store only ever sees ciphertext for the fields
the catalogue marks personal (G1), and a field nobody returns is never decrypted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date

from pacte.crypto import BlindIndex, FieldCipher
from pacte.errors import InputError
from pacte.graph.model import NODE_KINDS, Field, age_band
from pacte.graph.store import EVENT_INDEX, IndexEntry, Node, Value, WriteBatch, event_token

__all__ = ["EVENT_INDEX", "Codec", "event_token", "index_name"]


def index_name(kind: str, field: str) -> str:
    return f"{kind}.{field}"


_PERSONAL: dict[str, tuple[Field, ...]] = {
    k: tuple(f for f in nk.fields if f.personal) for k, nk in NODE_KINDS.items()
}
# The names of each kind's personal fields: `open` asks it of every field it returns.
_PERSONAL_NAMES: dict[str, frozenset[str]] = {
    k: frozenset(f.name for f in fields) for k, fields in _PERSONAL.items()
}


class Codec:
    """Seals and opens the personal fields of nodes with the per-customer FieldCipher."""

    def __init__(self, cipher: FieldCipher, index: BlindIndex, *,
                 today: Callable[[], str] | None = None) -> None:
        self._cipher = cipher
        self._index = index
        self._today = today or (lambda: date.today().isoformat())

    def seal(self, node: Node) -> tuple[Node, list[IndexEntry]]:
        personal = _PERSONAL.get(node.kind, ())
        if not personal:
            return node, []
        if node.owner is None:
            raise InputError(f"a {node.kind} node needs an owning customer")
        props = dict(node.props)
        if node.kind == "Customer" and isinstance(props.get("birth_date"), str):
            # Analysts may see an age band but never a birth date (G4, G9): derive it on
            # the way in so reading it never touches the birth date.
            props["age_band"] = age_band(str(props["birth_date"]), today=self._today())
        entries: list[IndexEntry] = []
        for f in personal:
            value = props.get(f.name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise InputError(f"{node.kind}.{f.name} must be text")
            if f.blind_index:
                entries.append(IndexEntry(index_name(node.kind, f.name),
                                          self._index.token(f.name, value), node.id))
            props[f.name] = self._cipher.encrypt(node.owner, node.id, f.name,
                                                 value.encode("utf-8"))
        return Node(node.kind, node.id, props, node.owner), entries

    def seal_batch(self, batch: WriteBatch) -> WriteBatch:
        """The same batch with every node sealed and its blind-index entries added."""
        nodes: list[Node] = []
        index = list(batch.index)
        for n in batch.nodes:
            sealed, entries = self.seal(n)
            nodes.append(sealed)
            index.extend(entries)
        return WriteBatch(nodes=nodes, edges=batch.edges, index=index,
                          delete_nodes=batch.delete_nodes, delete_edges=batch.delete_edges,
                          unindex=batch.unindex)

    def open(self, node: Node, names: Iterable[str]) -> dict[str, Value]:
        """The named fields of `node` in plaintext; only personal ones are decrypted."""
        props = node.props
        out = {name: props.get(name) for name in names}
        personal = _PERSONAL_NAMES.get(node.kind)
        owner = node.owner
        if personal and owner is not None:
            # Values are replaced in place (the keys stay): a read opens twenty rows, so
            # one pass over what was taken beats a second dict.
            decrypt = self._cipher.decrypt
            for name, value in out.items():
                if isinstance(value, bytes) and name in personal:
                    out[name] = decrypt(owner, node.id, name, value).decode("utf-8")
        return out

    def token(self, kind: str, field: str, value: str) -> bytes:
        return self._index.token(field, value)

    def same(self, field: str, stored: Value, given: str) -> bool:
        """Whether a decrypted value is `given` once both are normalised as the blind
        index of `field` normalises them (a candidate of a lookup is then the match)."""
        if not isinstance(stored, str):
            return False
        try:
            return self._index.normalise(field, stored) == self._index.normalise(field, given)
        except InputError:
            return False

    def keyed_token(self, namespace: str, value: str) -> bytes:
        return self._index.keyed_token(namespace, value)

