"""Bearer tokens of the control API: a read-only role and an operator role.

Tokens come from a file (one `ROLE TOKEN` per line, `#` comments; it must not be readable by
others) or from the environment (`EGOVLAB_API_TOKENS="operator:TOKEN,read-only:TOKEN"`).
Nothing is built in: a server without tokens refuses to start.
"""
from __future__ import annotations

import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from egovlab.inventory.errors import EgovlabError

ROLES = ("read-only", "operator")
ENV = "EGOVLAB_API_TOKENS"
MIN_LENGTH = 24  # a token shorter than this is guessable: refuse it


@dataclass(frozen=True)
class Tokens:
    by_role: dict[str, tuple[str, ...]]

    def role_of(self, presented: str) -> str | None:
        """The role of a presented token, compared in constant time; None if it is not ours."""
        found = None
        for role in ROLES:
            for token in self.by_role.get(role, ()):
                if hmac.compare_digest(token.encode(), presented.encode()):
                    found = role
        return found


def _add(by_role: dict[str, list[str]], role: str, token: str, where: str) -> None:
    if role not in ROLES:
        raise EgovlabError(f"{where}: unknown role '{role}' (expected {' or '.join(ROLES)})")
    if len(token) < MIN_LENGTH:
        raise EgovlabError(f"{where}: the {role} token is shorter than {MIN_LENGTH} characters")
    by_role.setdefault(role, []).append(token)


def parse_file(path: Path) -> Tokens:
    try:
        mode = path.stat().st_mode
        text = path.read_text()
    except OSError as exc:
        raise EgovlabError(f"{path}: cannot read the token file: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise EgovlabError(f"{path}: the token file is readable by others (chmod 600 {path})")
    by_role: dict[str, list[str]] = {}
    for n, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise EgovlabError(f"{path}:{n}: expected 'ROLE TOKEN'")
        _add(by_role, parts[0], parts[1], f"{path}:{n}")
    return _checked(by_role, str(path))


def parse_env(value: str) -> Tokens:
    by_role: dict[str, list[str]] = {}
    for item in filter(None, (i.strip() for i in value.split(","))):
        role, sep, token = item.partition(":")
        if not sep:
            raise EgovlabError(f"{ENV}: expected ROLE:TOKEN[,ROLE:TOKEN], got '{role[:12]}…'")
        _add(by_role, role, token, ENV)
    return _checked(by_role, ENV)


def _checked(by_role: dict[str, list[str]], where: str) -> Tokens:
    if not by_role:
        raise EgovlabError(f"{where}: no tokens")
    return Tokens({role: tuple(tokens) for role, tokens in by_role.items()})


def load(path: str | None) -> Tokens:
    """From the file if one is named, else from the environment; a clear error if neither."""
    if path:
        return parse_file(Path(path))
    if os.environ.get(ENV):
        return parse_env(os.environ[ENV])
    raise EgovlabError(f"no API tokens: give --tokens FILE (see `egovlab serve --new-tokens FILE`) or set {ENV}")


def generate(path: Path) -> dict[str, str]:
    """Write a new token file (0600) with one token per role; refuse to overwrite one."""
    tokens = {role: secrets.token_urlsafe(32) for role in ROLES}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise EgovlabError(f"{path}: exists; not overwriting a token file") from None
    except OSError as exc:
        raise EgovlabError(f"{path}: cannot create: {exc.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write("# egovlab API tokens: ROLE TOKEN\n")
        for role, token in tokens.items():
            f.write(f"{role} {token}\n")
    return tokens
