"""The user directory: who the gateway's users are and how calls find them.

Kept in one JSON file so that the command line, the operator and every
gateway instance (through a shared volume) see the same users; instances
reload it when it changes on disk.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gateway.users.phone import to_e164

# The host is a name, an IPv4 address or a bracketed IPv6 reference (RFC 3261 §25.1).
_AOR = re.compile(
    r"^\s*<?\s*(sips?):([^@>;\s]+)@(\[[0-9A-Fa-f:.]+\]|[^>;:\s\[\]]+)(?::[0-9]+)?", re.IGNORECASE
)
_LOGIN = re.compile(r"^[A-Za-z0-9._@+-]{1,64}\Z")
# A PBX extension as AMI and the event socket name it (the device part of a channel).
_EXTENSION = re.compile(r"^[A-Za-z0-9_.+-]{1,32}\Z")


class DirectoryError(ValueError):
    """A user entry or a directory file that cannot be accepted."""


def normalise_aor(raw: str) -> str | None:
    """``sip:user@host`` with the scheme and host lower-cased, no port or params.

    SIP compares the user part case-sensitively and the host not at all.
    """
    match = _AOR.match(raw)
    if not match:
        return None
    scheme, user, host = match.groups()
    if host.startswith("["):
        # One address, one spelling: [FD00:0::5] and [fd00::5] are the same host.
        try:
            host = f"[{ipaddress.IPv6Address(host[1:-1]).compressed}]"
        except ValueError:
            return None
    return f"{scheme.lower()}:{user}@{host.lower()}"


@dataclass(frozen=True)
class User:
    id: str
    login: str
    tenant: int
    password_hash: str
    hubspot_user_id: int | None = None
    display_name: str = ""
    aors: tuple[str, ...] = field(default=())
    numbers: tuple[str, ...] = field(default=())
    # The user's extension on the tenant's PBX (AMI, event socket); "" when none.
    extension: str = ""

    @property
    def own_number(self) -> str | None:
        """The user's side of a call in E.164, where a source does not say it.

        PBXes name the extension, not the number, and ingest senders may
        know only the remote party; HubSpot logs both ends either way.
        """
        return self.numbers[0] if self.numbers else None

    @property
    def pbx_extension(self) -> str | None:
        """The extension a PBX rings for the user: the one given, else the first numeric AOR user part."""
        if self.extension:
            return self.extension
        return next((ext for ext in map(_extension, self.aors) if ext is not None), None)

    def public(self) -> dict[str, Any]:
        """What the user's own browser may see about the user."""
        return {
            "id": self.id,
            "login": self.login,
            "displayName": self.display_name or self.login,
            "portalId": self.tenant,
            "hubspotUserId": self.hubspot_user_id,
            "numbers": list(self.numbers),
        }

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["aors"] = list(self.aors)
        data["numbers"] = list(self.numbers)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any], default_region: str) -> User:
        try:
            login = str(data["login"])
            if not _LOGIN.match(login):
                raise DirectoryError(f"login {login!r} must be 1-64 of A-Z a-z 0-9 . _ @ + -")
            aors: list[str] = []
            for raw in data.get("aors", []):
                aor = normalise_aor(str(raw))
                if aor is None:
                    raise DirectoryError(f"user {login}: {raw!r} is not a sip: address of record")
                aors.append(aor)
            numbers: list[str] = []
            for raw in data.get("numbers", []):
                if not str(raw).strip():
                    continue
                number = to_e164(str(raw), default_region)
                if number is None:
                    raise DirectoryError(f"user {login}: {raw!r} is not a phone number")
                numbers.append(number)
            extension = str(data.get("extension") or "").strip()
            if extension and not _EXTENSION.match(extension):
                raise DirectoryError(
                    f"user {login}: {extension!r} is not an extension (1-32 of A-Z 0-9 _ . + -)"
                )
            hubspot = data.get("hubspot_user_id")
            return cls(
                id=str(data.get("id") or login),
                login=login,
                tenant=int(data["tenant"]),
                password_hash=str(data["password_hash"]),
                hubspot_user_id=None if hubspot in (None, "") else int(hubspot),
                display_name=str(data.get("display_name", "")),
                aors=tuple(aors),
                numbers=tuple(numbers),
                extension=extension,
            )
        except KeyError as exc:
            raise DirectoryError(f"user entry is missing {exc.args[0]!r}") from None
        except (TypeError, ValueError, OverflowError) as exc:
            if isinstance(exc, DirectoryError):
                raise
            raise DirectoryError(f"user entry is invalid: {exc}") from None


def _extension(aor: str | None) -> str | None:
    if aor is None:
        return None
    user_part = aor.split(":", 1)[1].rsplit("@", 1)[0]
    return user_part if user_part.isascii() and user_part.isdecimal() else None


def _extension_keys(user: User) -> set[tuple[int, str]]:
    keys = {(user.tenant, ext) for ext in map(_extension, user.aors) if ext is not None}
    if user.extension:
        keys.add((user.tenant, user.extension))
    return keys


class Directory:
    """Users indexed by id, login, address of record and phone number."""

    def __init__(self, users: Iterable[User] = (), default_region: str = "US") -> None:
        self.default_region = default_region
        self._by_id: dict[str, User] = {}
        self._by_login: dict[str, User] = {}
        self._by_aor: dict[str, User] = {}
        self._by_number: dict[str, User] = {}
        # (tenant, extension) -> the users whose AOR has that numeric user part.
        self._by_extension: dict[tuple[int, str], list[User]] = {}
        # (tenant, extension) -> the user given that extension explicitly.
        self._by_own_extension: dict[tuple[int, str], User] = {}
        for user in users:
            self.add(user)

    def __len__(self) -> int:
        return len(self._by_id)

    def __iter__(self) -> Any:
        return iter(sorted(self._by_id.values(), key=lambda u: u.login))

    def add(self, user: User) -> None:
        if user.id in self._by_id or user.login in self._by_login:
            raise DirectoryError(f"user {user.login} already exists")
        for aor in user.aors:
            if aor in self._by_aor:
                raise DirectoryError(f"{aor} already belongs to {self._by_aor[aor].login}")
        for number in user.numbers:
            if number in self._by_number:
                raise DirectoryError(f"{number} already belongs to {self._by_number[number].login}")
        own_extension = (user.tenant, user.extension)
        if user.extension and own_extension in self._by_own_extension:
            holder = self._by_own_extension[own_extension].login
            raise DirectoryError(
                f"extension {user.extension} of portal {user.tenant} already belongs to {holder}"
            )
        self._by_id[user.id] = user
        if user.extension:
            self._by_own_extension[own_extension] = user
        self._by_login[user.login] = user
        self._by_aor.update({aor: user for aor in user.aors})
        self._by_number.update({number: user for number in user.numbers})
        for key in _extension_keys(user):
            self._by_extension.setdefault(key, []).append(user)

    def remove(self, login: str) -> User:
        user = self._by_login.get(login)
        if user is None:
            raise DirectoryError(f"no user {login}")
        del self._by_id[user.id], self._by_login[login]
        for aor in user.aors:
            del self._by_aor[aor]
        for number in user.numbers:
            del self._by_number[number]
        self._by_own_extension.pop((user.tenant, user.extension), None)
        for key in _extension_keys(user):
            self._by_extension[key].remove(user)
            if not self._by_extension[key]:
                del self._by_extension[key]
        return user

    def replace(self, user: User) -> None:
        self.remove(user.login)
        self.add(user)

    def by_id(self, user_id: str) -> User | None:
        return self._by_id.get(user_id)

    def by_login(self, login: str) -> User | None:
        return self._by_login.get(login)

    def by_aor(self, raw: str) -> User | None:
        aor = normalise_aor(raw)
        return None if aor is None else self._by_aor.get(aor)

    def by_identity(self, raw: str, tenant: int) -> User | None:
        """The user a SIP identity names, seen from a PBX of ``tenant``.

        By address of record first; else by extension (a numeric user part),
        since a PBX may name its own host differently from the users file
        (an address instead of a name): only among the tenant's users, and
        only when exactly one of them has it.
        """
        user = self.by_aor(raw)
        if user is not None:
            return user
        extension = _extension(normalise_aor(raw))
        if extension is None:
            return None
        found = self._by_extension.get((tenant, extension), [])
        return found[0] if len(found) == 1 else None

    def by_extension(self, tenant: int, extension: str) -> User | None:
        """The user a PBX extension of ``tenant`` rings: the one given it, else the one AOR with it."""
        user = self._by_own_extension.get((tenant, extension))
        if user is not None:
            return user
        found = self._by_extension.get((tenant, extension), [])
        return found[0] if len(found) == 1 else None

    def number_of(self, identity: str, tenant: int) -> str | None:
        """The own number of the user a SIP identity names (``by_identity``), if any."""
        user = self.by_identity(identity, tenant)
        return user.own_number if user else None

    def by_number(self, raw: str) -> User | None:
        number = to_e164(raw, self.default_region)
        return None if number is None else self._by_number.get(number)

    # -- file --------------------------------------------------------------
    @classmethod
    def load(cls, path: Path, default_region: str = "US") -> Directory:
        try:
            data = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return cls(default_region=default_region)
        except OSError as exc:
            raise DirectoryError(f"{path}: cannot read ({exc})") from None
        except ValueError as exc:  # bad UTF-8 or JSON
            raise DirectoryError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict) or not isinstance(data.get("users"), list):
            raise DirectoryError(f'{path}: expected {{"users": [...]}}')
        return cls(
            (User.from_json(entry, default_region) for entry in data["users"]),
            default_region=default_region,
        )

    def save(self, path: Path) -> None:
        """Write atomically, so a reader never sees half a file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"users": [u.to_json() for u in self]}, indent=2) + "\n"
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(body)
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
