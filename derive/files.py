"""Writing derive's files: checked before any work, then all or nothing.

:func:`check_targets` refuses, before the derivation starts, an output
directory derive cannot write and any file it must not replace: a
directory, a FIFO, a device, a socket or a symbolic link (never opened or
followed), a file it cannot read, and a file whose first line is not
derive's header (unless ``force``). Only the first line of an existing
file is read, so a huge file costs nothing. :func:`write_all` writes every
file to a temporary file and renames it into place, with the usual
permissions (0666 less the umask).

This module imports only the standard library.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import DeriveError
from .render import GENERATED_MARK

FIRST_LINE = 512  # bytes read from an existing file to find derive's header
HEADER = re.compile(rf"(%|#|<!--) {GENERATED_MARK} from templates/")

_KINDS = (
    (stat.S_ISLNK, "a symbolic link"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
    (stat.S_ISSOCK, "a socket"),
)


def quoted(path: Path | str, limit: int = 80) -> str:
    """A path for a message: quoted, and shortened in the middle when long."""
    text = str(path)
    if len(text) > limit:
        text = text[: limit // 2 - 2] + "..." + text[-(limit // 2 - 1) :]
    return repr(text)


def made_by_derive(first_line: str) -> bool:
    """Whether a file's first line is the header derive writes on every file."""
    return HEADER.match(first_line) is not None


def check_directory(directory: Path) -> None:
    """DeriveError unless ``directory`` is, or can be made as, a writable directory."""
    where = quoted(directory)
    if directory.exists():
        if not directory.is_dir():
            raise DeriveError(f"the output directory {where} is not a directory")
        if not os.access(directory, os.W_OK | os.X_OK):
            raise DeriveError(f"cannot write to the output directory {where}")
        return
    parent = directory.absolute()
    while not parent.exists() and not parent.is_symlink() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise DeriveError(f"cannot create the output directory {where}: {quoted(parent)} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DeriveError(f"cannot create the output directory {where}: no permission to write in {quoted(parent)}")


def check_target(path: Path, force: bool) -> None:
    """DeriveError if ``path`` exists and must not be replaced; never opens anything but a regular file."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as e:
        raise DeriveError(f"cannot look at {quoted(path)}: {e.strerror}") from None
    if stat.S_ISDIR(mode):
        raise DeriveError(f"{quoted(path)} is a directory; choose another --name or output directory")
    kind = next((text for test, text in _KINDS if test(mode)), None)
    if force:
        return
    if kind is not None:
        raise DeriveError(f"{quoted(path)} is {kind}, not a file derive made; use --force to replace it")
    if not made_by_derive(first_line(path)):
        raise DeriveError(f"{quoted(path)} exists and was not made by derive; use --force to overwrite it")


def first_line(path: Path) -> str:
    """The first line of a regular file (at most FIRST_LINE bytes); never follows a link or blocks."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise DeriveError(
            f"cannot read {quoted(path)} to see whether derive made it ({e.strerror}); use --force to replace it"
        ) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DeriveError(f"{quoted(path)} is not a regular file; use --force to replace it")
        data = os.read(fd, FIRST_LINE)
    except OSError as e:
        raise DeriveError(f"cannot read {quoted(path)}: {e.strerror}; use --force to replace it") from None
    finally:
        os.close(fd)
    return data.split(b"\n", 1)[0].decode("utf-8", errors="replace")


def check_targets(directory: Path, names: Sequence[str], force: bool) -> None:
    """Refuse, before any work, a directory or a file derive cannot or must not write."""
    check_directory(directory)
    if directory.is_dir():
        for name in names:
            check_target(directory / name, force)


def umask() -> int:
    """The process's umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_all(files: Mapping[str, str], directory: Path, force: bool) -> list[Path]:
    """Write every file atomically (temporary file, then rename), 0666 less the umask; all or nothing.

    The checks of :func:`check_targets` run again here, just before writing.
    """
    check_directory(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DeriveError(f"cannot create the output directory {quoted(directory)}: {e.strerror}") from None
    targets = [directory / n for n in files]
    for t in targets:
        check_target(t, force)
    mode = 0o666 & ~umask()
    temps: list[tuple[str, Path]] = []
    try:
        for t in targets:
            fd, tmp = tempfile.mkstemp(prefix=f".{t.name}.", suffix=".tmp", dir=directory)
            temps.append((tmp, t))
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                os.fchmod(f.fileno(), mode)
                f.write(files[t.name])
        for tmp, t in temps:
            os.replace(tmp, t)
    except OSError as e:
        raise DeriveError(f"cannot write to {quoted(directory)}: {e.strerror}") from None
    finally:
        for tmp, _ in temps:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return targets
