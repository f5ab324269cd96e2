"""Which fields of a Customer or an Interaction a query returns, read off its syntax tree.

The session opens (decrypts) only those (DESIGN.md §9: decrypt only what is returned):
resolvers pass what `customer_fields` and `interaction_fields` find to its reads.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, cast

from graphql import (
    DirectiveNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionNode,
    SelectionSetNode,
    VariableNode,
)
from strawberry.types.nodes import get_variable_values

from pacte.api.context import PacteInfo
from pacte.graph.model import NODE_KINDS

__all__ = ["camel", "customer_fields", "interaction_fields"]


def camel(name: str) -> str:
    """The GraphQL name of a catalogue field (`birth_date` -> `birthDate`)."""
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# The view field each GraphQL field of Customer and Interaction returns (`birthDate` ->
# `birth_date`). Fields not named here (id, withheld, consents, product, ...) need none.
_CUSTOMER_FIELDS = {camel(f.name): f.name for f in NODE_KINDS["Customer"].fields}
_INTERACTION_FIELDS = {camel(f.name): f.name for f in NODE_KINDS["Interaction"].fields}


def customer_fields(info: PacteInfo, *path: str) -> frozenset[str]:
    """The Customer fields the query returns, for the session to open only those.

    `path` leads from the current field to the Customer objects (`"edges", "node"` for
    a connection); empty, the current field's value is a Customer.
    """
    return _selected(info, _CUSTOMER_FIELDS, path, on=("Customer", "Node"))


def interaction_fields(info: PacteInfo, *path: str) -> frozenset[str]:
    """The Interaction fields the query returns (see `customer_fields`)."""
    return _selected(info, _INTERACTION_FIELDS, path, on=("Interaction",))


class _Variables(Mapping[str, Any]):
    """The request's variables, read only if a @skip/@include asks (then the walk's
    answer depends on them, and is not remembered)."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.read = False

    def _values(self) -> Mapping[str, Any]:
        self.read = True
        return cast(Mapping[str, Any], get_variable_values(self._raw))

    def __getitem__(self, key: str) -> Any:
        return self._values()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values())

    def __len__(self) -> int:
        return len(self._values())


# What `_selected` answered, by the field's nodes (held, so that their ids stay theirs)
# and what was asked: the parsed documents are cached, so a query's nodes come back
# with every request of it. Bounded: emptied when full.
_SELECTED: dict[tuple[Any, ...], tuple[tuple[Any, ...], frozenset[str]]] = {}
_SELECTED_MAX = 1024


def _selected(info: PacteInfo, names: Mapping[str, str], path: Sequence[str], *,
              on: tuple[str, ...]) -> frozenset[str]:
    # Read off the query's syntax tree: strawberry's `selected_fields` would first
    # convert the field's whole subtree, arguments and directives included, per call.
    raw = info._raw_info
    nodes = tuple(raw.field_nodes)
    key = (tuple(map(id, nodes)), id(names), tuple(path), on)
    known = _SELECTED.get(key)
    if known is not None and all(a is b for a, b in zip(known[0], nodes, strict=True)):
        return known[1]
    variables = _Variables(raw)
    fragments = raw.fragments
    found: set[str] = set()
    # Several nodes when the query names the field more than once (merged by GraphQL).
    for node in nodes:
        if node.selection_set is not None:
            _collect(node.selection_set.selections, names, path, found, on, fragments,
                     variables)
    answer = frozenset(found)
    if not variables.read:
        if len(_SELECTED) >= _SELECTED_MAX:
            _SELECTED.clear()
        _SELECTED[key] = (nodes, answer)
    return answer


def _condition(directive: DirectiveNode, variables: Mapping[str, Any]) -> object:
    """The `if` of @skip or @include, as strawberry's selections read it."""
    for arg in directive.arguments or ():
        if arg.name.value == "if":
            value = arg.value
            if isinstance(value, VariableNode):
                return variables.get(value.name.value)
            return getattr(value, "value", None)
    return None


def _skipped(node: SelectionNode, variables: Mapping[str, Any]) -> bool:
    for d in node.directives or ():
        name = d.name.value
        if (name == "skip" and _condition(d, variables) is True) \
                or (name == "include" and _condition(d, variables) is False):
            return True
    return False


def _collect(selections: Sequence[SelectionNode], names: Mapping[str, str],
             path: Sequence[str], found: set[str], on: tuple[str, ...],
             fragments: Mapping[str, FragmentDefinitionNode],
             variables: Mapping[str, Any]) -> None:
    for s in selections:
        # A skipped selection returns nothing, so it opens nothing.
        if s.directives and _skipped(s, variables):
            continue
        if isinstance(s, FieldNode):
            if path:
                if s.name.value == path[0] and s.selection_set is not None:
                    _collect(s.selection_set.selections, names, path[1:], found, on,
                             fragments, variables)
            elif (name := names.get(s.name.value)) is not None:  # by name, not alias
                found.add(name)
            continue
        fragment = _fragment(s, fragments)
        if fragment is None:
            continue
        condition, inner = fragment
        # A fragment's fields belong to the same object, unless it is for another type
        # (`node(id:) { ... on Product { name } }` opens no customer's name).
        if path or condition is None or condition in on:
            _collect(inner.selections, names, path, found, on, fragments, variables)


def _fragment(s: SelectionNode, fragments: Mapping[str, FragmentDefinitionNode]
              ) -> tuple[str | None, SelectionSetNode] | None:
    """A fragment's type condition (None: none) and selections, named or inline."""
    if isinstance(s, FragmentSpreadNode):
        fragment = fragments.get(s.name.value)
        if fragment is None:
            return None
        return fragment.type_condition.name.value, fragment.selection_set
    if isinstance(s, InlineFragmentNode):
        return (s.type_condition.name.value if s.type_condition else None), s.selection_set
    return None
