"""The user directory: lookups, validation, the file, and reloads while running."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gateway.auth.passwords import hash_password, verify_password
from gateway.users.directory import Directory, DirectoryError, User, normalise_aor
from gateway.users.reload import DirectoryWatcher
from tests.support.harness import Client, make_settings, running_gateway, signal
from tests.support.harness import test_users as sample_users
from tests.support.logcheck import expect_log


def watcher(gw: Client) -> DirectoryWatcher:
    found = [c for c in gw.gateway.components if isinstance(c, DirectoryWatcher)]
    assert len(found) == 1
    return found[0]


def user(login: str, **extra: object) -> User:
    return User.from_json({"login": login, "tenant": 1, "password_hash": "x", **extra}, "US")


def test_users_are_found_by_login_aor_and_number() -> None:
    directory = Directory([user("ann", aors=["sip:1001@PBX.example.com"], numbers=["(555) 555-0101"])])
    assert directory.by_login("ann") is not None
    assert directory.by_aor("<sip:1001@pbx.example.com:5060;transport=udp>") is directory.by_login("ann")
    assert directory.by_number("+1 555 555 0101") is directory.by_login("ann")
    assert directory.by_number("+15555550102") is None


def test_aor_user_part_is_case_sensitive_and_host_is_not() -> None:
    assert normalise_aor("SIP:Alice@Example.COM") == "sip:Alice@example.com"
    assert normalise_aor("not an aor") is None


def test_an_ipv6_aor_keeps_its_whole_address() -> None:
    assert normalise_aor("sip:1001@[fd00::5]:5060;transport=tcp") == "sip:1001@[fd00::5]"
    assert normalise_aor("sip:1001@[fd00::5]") != normalise_aor("sip:1001@[fd00::6]")


def test_one_ipv6_address_written_two_ways_is_one_aor() -> None:
    assert normalise_aor("<sip:1001@[FD00:0:0::5]>") == "sip:1001@[fd00::5]"


def test_a_bracketed_host_that_is_no_ipv6_address_is_no_aor() -> None:
    assert normalise_aor("sip:1001@[fd00::zz]") is None
    assert normalise_aor("sip:1001@[fd00") is None


def test_users_at_two_ipv6_hosts_are_told_apart() -> None:
    directory = Directory([user("ann", aors=["sip:1001@[fd00::5]"]), user("bo", aors=["sip:1001@[fd00::6]"])])
    assert directory.by_aor("sip:1001@[fd00::6]:5060") is directory.by_login("bo")


def test_an_address_or_number_belongs_to_one_user_only() -> None:
    directory = Directory([user("ann", aors=["sip:1@x"], numbers=["+15555550101"])])
    with pytest.raises(DirectoryError, match="already belongs to ann"):
        directory.add(user("bo", aors=["sip:1@x"]))
    with pytest.raises(DirectoryError, match="already belongs to ann"):
        directory.add(user("bo", numbers=["+15555550101"]))


def test_invalid_entries_are_refused_with_the_reason() -> None:
    with pytest.raises(DirectoryError, match="missing 'tenant'"):
        User.from_json({"login": "ann", "password_hash": "x"}, "US")
    with pytest.raises(DirectoryError, match="not a sip: address"):
        user("ann", aors=["1001"])
    with pytest.raises(DirectoryError, match="login"):
        user("bad login")
    with pytest.raises(DirectoryError, match="login"):
        user("ann\n")


def test_a_number_that_is_no_phone_number_is_refused() -> None:
    with pytest.raises(DirectoryError, match="'sales' is not a phone number"):
        user("ann", numbers=["sales"])


def test_a_sip_identity_finds_its_user_by_address_of_record() -> None:
    directory = Directory([user("ann", aors=["sip:1001@pbx.example.com"], numbers=["+15555550101"])])
    assert directory.by_identity("<sip:1001@PBX.example.com;user=phone>", tenant=1) is directory.by_login(
        "ann"
    )


def test_a_sip_identity_finds_its_user_by_extension_on_another_host_spelling() -> None:
    directory = Directory([user("ann", aors=["sip:1001@pbx.example.com"])])
    assert directory.by_identity("sip:1001@10.0.0.5:5060", tenant=1) is directory.by_login("ann")


def test_an_extension_belongs_to_the_users_of_one_tenant_only() -> None:
    other = User.from_json({"login": "bo", "tenant": 2, "password_hash": "x", "aors": ["sip:1001@b"]}, "US")
    directory = Directory([other])
    assert directory.by_identity("sip:1001@10.0.0.5", tenant=1) is None


def test_an_extension_two_users_of_a_tenant_share_names_neither() -> None:
    directory = Directory([user("ann", aors=["sip:1001@pbx-a"]), user("bo", aors=["sip:1001@pbx-b"])])
    assert directory.by_identity("sip:1001@10.0.0.5", tenant=1) is None
    assert directory.by_identity("sip:1001@pbx-b", tenant=1) is directory.by_login("bo")
    directory.remove("bo")
    assert directory.by_identity("sip:1001@10.0.0.5", tenant=1) is directory.by_login("ann")


def test_the_file_round_trips_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    Directory([user("ann", aors=["sip:1@x"])]).save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    loaded = Directory.load(path)
    assert loaded.by_aor("sip:1@x") == user("ann", aors=["sip:1@x"])


def test_a_broken_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    path.write_text("{nope")
    with pytest.raises(DirectoryError, match="not valid JSON"):
        Directory.load(path)


def test_passwords_are_hashed_with_a_salt_and_verified() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second
    assert first.startswith("scrypt$")
    assert verify_password("correct horse", first)
    assert not verify_password("wrong horse", first)
    assert not verify_password("correct horse", "garbage")


async def test_a_user_added_to_the_file_can_log_in_without_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running_gateway(settings) as gw:
        entries = sample_users()
        entries.append({**entries[1], "login": "carol", "id": "carol", "aors": [], "numbers": []})
        settings.users_file.write_text(json.dumps({"users": entries}))
        assert await watcher(gw).check()
        assert await gw.login("carol", "bob-password")


async def test_removing_a_user_closes_their_streams(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running_gateway(settings) as gw:
        token = await gw.login("bob")
        async with gw.stream(token) as stream:
            settings.users_file.write_text(json.dumps({"users": sample_users()[:1]}))
            assert await watcher(gw).check()
            await asyncio.wait_for(stream.ended.wait(), 5)
        assert (await gw.ingest(signal("x", "ringing", user="bob"))).status_code == 404


async def test_a_broken_users_file_keeps_the_users_already_loaded(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running_gateway(settings) as gw:
        settings.users_file.write_text("{broken")
        with expect_log("gateway", "users file not reloaded"):
            assert not await watcher(gw).check()
        assert await gw.login("alice")


async def test_the_running_gateway_picks_up_file_changes_by_itself(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, users_reload_seconds=0.05)
    async with running_gateway(settings) as gw:
        entries = sample_users()[:1]  # bob removed
        with expect_log("gateway", "users file not reloaded"):
            settings.users_file.write_bytes(b"\xff\xfe not even text")
            await asyncio.sleep(0.2)  # the watcher sees the broken file, and keeps going
        settings.users_file.write_text(json.dumps({"users": entries}))
        for _ in range(100):
            if gw.gateway.directory.by_login("bob") is None:
                break
            await asyncio.sleep(0.05)
        assert gw.gateway.directory.by_login("bob") is None
        assert gw.gateway.directory.by_login("alice") is not None


def test_a_pbx_extension_finds_its_user_within_the_tenant_only() -> None:
    directory = Directory([user("ann", extension="201"), user("cid", tenant=2, extension="201")])
    assert [directory.by_extension(t, "201").login for t in (1, 2)] == ["ann", "cid"]  # type: ignore[union-attr]
    assert directory.by_extension(3, "201") is None


def test_an_aors_numeric_user_part_is_an_extension_too() -> None:
    directory = Directory([user("ann", aors=["sip:1001@pbx.test"])])
    assert directory.by_extension(1, "1001") == directory.by_login("ann")


def test_a_given_extension_wins_over_an_aors() -> None:
    directory = Directory([user("ann", aors=["sip:1001@pbx.test"]), user("bea", extension="1001")])
    assert directory.by_extension(1, "1001") == directory.by_login("bea")


def test_one_extension_given_to_two_users_of_a_tenant_is_refused() -> None:
    with pytest.raises(DirectoryError, match="extension 201 of portal 1 already belongs to ann"):
        Directory([user("ann", extension="201"), user("bea", extension="201")])


def test_an_extension_with_spaces_or_line_breaks_is_refused() -> None:
    with pytest.raises(DirectoryError, match="is not an extension"):
        user("ann", extension="20 1\n")


def test_a_removed_users_extension_is_free_again() -> None:
    directory = Directory([user("ann", extension="201")])
    directory.remove("ann")
    directory.add(user("bea", extension="201"))
    assert directory.by_extension(1, "201") == directory.by_login("bea")


def test_the_extension_is_kept_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    Directory([user("ann", extension="201")]).save(path)
    assert Directory.load(path).by_extension(1, "201") is not None
