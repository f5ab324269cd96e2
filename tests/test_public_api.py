"""The public API is exactly what `__all__` says (as httpx tests its own)."""

from __future__ import annotations

import inspect

import pacte
import pacte.errors


def test_all_lists_every_public_name_and_nothing_else() -> None:
    public = {name for name in dir(pacte) if not name.startswith("_")}
    # Subpackages show up as attributes once imported; they are namespaces, not API.
    modules = {name for name in public if inspect.ismodule(getattr(pacte, name))}
    assert set(pacte.__all__) - {"__version__"} == public - modules
    assert sorted(pacte.__all__, key=str.lower) == sorted(set(pacte.__all__), key=str.lower)


def test_every_error_is_exported_and_documented() -> None:
    errors = {name for name, obj in vars(pacte.errors).items()
              if inspect.isclass(obj) and issubclass(obj, pacte.PacteError)}
    assert errors <= set(pacte.__all__)
    assert set(pacte.errors.__all__) == errors
    tree = pacte.errors.__doc__ or ""
    for name in errors:
        assert name in tree, f"{name} is missing from the hierarchy drawn in errors.py"
        cls = getattr(pacte.errors, name)
        assert cls.__doc__ and cls.__doc__.count("\n") == 0, name
        assert cls.code.isupper()


def test_retryable_is_part_of_storage_errors() -> None:
    assert pacte.StorageError("x", retryable=True).retryable
    assert not pacte.CorruptStore("x").retryable
