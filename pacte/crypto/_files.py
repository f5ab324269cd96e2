"""Private key files: written atomically with mode 0600, refused when others can read them.

The key file, the signing key and anything else that holds a secret go through here,
so that every one of them gets the same checks and the same message naming the fix.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from pacte.errors import KeyVaultError

__all__ = ["read_private", "write_private"]

# Any permission bit for group or others: a secret that another account can read (or
# replace) is no longer a secret, so the check is the one OpenSSH applies to its keys.
_OTHERS = stat.S_IRWXG | stat.S_IRWXO


def read_private(path: Path, *, what: str) -> bytes:
    """The bytes of a secret file, refusing it when group or others have any access."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        raise KeyVaultError(f"the {what} {path} does not exist") from None
    except OSError as exc:
        raise KeyVaultError(f"cannot read the {what} {path}: {exc.strerror}") from None
    try:
        # fstat on the descriptor we read from, so the file checked is the file read.
        mode = os.fstat(fd).st_mode
        if os.name == "posix" and mode & _OTHERS:
            raise KeyVaultError(
                f"the {what} {path} is accessible to other users "
                f"(mode {stat.S_IMODE(mode):04o}); run `chmod 600 {path}`"
            )
        chunks: list[bytes] = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write_private(path: Path, data: bytes, *, what: str, replace: bool) -> None:
    """Write a secret file with mode 0600, atomically.

    The bytes go to a temporary file in the same directory (created 0600, so the secret
    is never readable by others even for an instant), are synced, then moved into place.
    With `replace=False` an existing file is never overwritten: losing a key file
    loses every key it held.
    """
    directory = path.parent
    tmp = directory / f".{path.name}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise KeyVaultError(f"cannot write the {what} {path}: {exc.strerror}") from None
    try:
        try:
            os.fchmod(fd, 0o600)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                # link() fails if the target exists, atomically, unlike exists() + rename.
                os.link(tmp, path)
            except FileExistsError:
                raise KeyVaultError(f"the {what} {path} already exists; not overwriting it"
                                    ) from None
    except OSError as exc:
        raise KeyVaultError(f"cannot write the {what} {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    _sync_dir(directory)


def _sync_dir(directory: Path) -> None:
    # Makes the rename durable; not every platform lets a directory be opened.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
