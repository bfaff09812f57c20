"""RFC 3903 PUBLISH decisions with self-validating entity tags."""

from __future__ import annotations

import pytest

from gateway.sources.sip.publish_rules import Decision, PublicationRules, PublishRequest

SECRET = "0123456789abcdef-test-secret"
ENTITY = "sip:1001@pbx.test"
BODY = (
    b'<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="0" state="full"'
    b' entity="sip:1001@pbx.test"/>'
)
CT = "application/dialog-info+xml"
NOW = 1_750_000_000_000
N1 = b"nonce-one-1234"
N2 = b"nonce-two-5678"

rules = PublicationRules(SECRET)


def publish(
    *,
    body: bytes = BODY,
    if_match: str | None = None,
    expires: str | None = None,
    event: str | None = "dialog",
    content_type: str | None = CT,
    entity: str = ENTITY,
    now: int = NOW,
    nonce: bytes = N1,
    with_rules: PublicationRules = rules,
    ends_dialog: bool = False,
) -> Decision:
    request = PublishRequest(
        entity=entity,
        event=event,
        content_type=content_type,
        body=body,
        sip_if_match=if_match,
        expires=expires,
        ends_dialog=ends_dialog,
    )
    return with_rules.decide(request, now, nonce)


def initial_tag() -> str:
    decision = publish()
    assert decision.etag is not None
    return decision.etag


# -- accepted -------------------------------------------------------------------------


def test_initial_publish_gets_200_a_new_tag_and_expires() -> None:
    decision = publish(expires="600")
    assert (decision.status, decision.kind, decision.expires) == (200, "initial", 600)
    assert decision.headers == (("SIP-ETag", decision.etag), ("Expires", "600"))


def test_initial_publish_without_expires_gets_the_default() -> None:
    assert publish().expires == 3600


def test_expires_above_the_maximum_is_reduced() -> None:
    assert publish(expires="86400").expires == 3600


def test_refresh_without_body_gets_a_new_tag() -> None:
    tag = initial_tag()
    decision = publish(body=b"", content_type=None, if_match=tag, nonce=N2)
    assert (decision.status, decision.kind) == (200, "refresh")
    assert decision.etag not in (None, tag)


def test_modify_with_body_gets_a_new_tag() -> None:
    tag = initial_tag()
    decision = publish(if_match=tag, nonce=N2)
    assert (decision.status, decision.kind, decision.has_state) == (200, "modify", True)
    assert decision.etag != tag


def test_publication_id_survives_refresh_and_modify() -> None:
    first = publish()
    refreshed = publish(body=b"", if_match=first.etag, nonce=N2)
    modified = publish(if_match=refreshed.etag, nonce=b"nonce-three-90")
    assert first.publication_id == refreshed.publication_id == modified.publication_id


def test_remove_gets_200_with_expires_zero_and_no_new_tag() -> None:
    tag = initial_tag()
    decision = publish(body=b"", if_match=tag, expires="0")
    assert (decision.status, decision.kind, decision.etag) == (200, "remove", None)
    assert decision.headers == (("Expires", "0"),)


def test_tag_issued_by_another_instance_is_accepted() -> None:
    other_instance = PublicationRules(SECRET)
    tag = initial_tag()
    assert publish(body=b"", if_match=tag, with_rules=other_instance).status == 200


def test_event_header_parameters_and_content_type_parameters_are_accepted() -> None:
    decision = publish(event="dialog;sla", content_type="Application/Dialog-Info+XML; charset=UTF-8")
    assert decision.status == 200


# -- refused ----------------------------------------------------------------------------


def test_unknown_tag_gets_412() -> None:
    assert publish(if_match="no-such-tag").status == 412


def test_forged_tag_gets_412() -> None:
    tag = initial_tag()
    publication, expiry, nonce, mac = tag.split(".")
    forged = f"{publication}.{int(expiry) + 86400}.{nonce}.{mac}"
    assert publish(if_match=forged).status == 412


def test_tag_signed_with_another_secret_gets_412() -> None:
    foreign = PublicationRules("another-secret-of-16+chars")
    tag = publish(with_rules=foreign).etag
    assert publish(if_match=tag).status == 412


def test_tag_of_another_entity_gets_412() -> None:
    tag = publish(entity="sip:1002@pbx.test").etag
    assert publish(if_match=tag).status == 412


def test_expired_tag_gets_412() -> None:
    tag = publish(expires="60").etag
    assert publish(body=b"", if_match=tag, now=NOW + 61_000).status == 412


def test_tag_just_before_expiry_is_still_accepted() -> None:
    tag = publish(expires="60").etag
    assert publish(body=b"", if_match=tag, now=NOW + 59_000).status == 200


@pytest.mark.parametrize("event", ["presence", "message-summary", "", None])
def test_other_event_package_gets_489_with_allow_events(event: str | None) -> None:
    decision = publish(event=event)
    assert (decision.status, decision.headers) == (489, (("Allow-Events", "dialog"),))


def test_expires_below_minimum_gets_423_with_min_expires() -> None:
    decision = publish(expires="30")
    assert (decision.status, decision.headers) == (423, (("Min-Expires", "60"),))


def test_a_document_ending_a_dialog_is_granted_an_interval_below_the_minimum() -> None:
    # Kamailio's pua_dialoginfo publishes `terminated` with Expires: 11 and
    # does not retry after a 423: refusing it would leave the call open.
    decision = publish(expires="11", ends_dialog=True)
    assert (decision.status, decision.kind, decision.expires) == (200, "initial", 11)
    modified = publish(expires="11", if_match=initial_tag(), ends_dialog=True, nonce=N2)
    assert (modified.status, modified.kind, modified.expires) == (200, "modify", 11)


def test_a_document_ending_a_dialog_still_has_its_interval_capped() -> None:
    assert publish(expires="99999", ends_dialog=True).expires == 3600


def test_a_configured_minimum_is_applied() -> None:
    low = PublicationRules(SECRET, min_expires=5)
    assert publish(expires="11", with_rules=low).status == 200
    assert publish(expires="4", with_rules=low).headers == (("Min-Expires", "5"),)


def test_other_body_type_gets_415_with_accept() -> None:
    decision = publish(content_type="application/pidf+xml")
    assert (decision.status, decision.headers) == (415, (("Accept", CT),))


def test_body_without_content_type_gets_415() -> None:
    assert publish(content_type=None).status == 415


def test_initial_publish_without_body_gets_400() -> None:
    assert publish(body=b"").status == 400


def test_removal_without_tag_gets_400() -> None:
    assert publish(expires="0").status == 400


@pytest.mark.parametrize("expires", ["soon", "-5", "99999999999"])
def test_unreadable_expires_gets_400(expires: str) -> None:
    assert publish(expires=expires).status == 400


def test_bad_event_is_checked_before_the_tag() -> None:
    assert publish(event="presence", if_match="forged").status == 489


def test_unknown_tag_is_checked_before_expires() -> None:
    assert publish(if_match="forged", expires="1").status == 412


# -- configuration --------------------------------------------------------------------


def test_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16"):
        PublicationRules("short")


def test_inconsistent_expiries_are_refused() -> None:
    with pytest.raises(ValueError, match="min_expires"):
        PublicationRules(SECRET, min_expires=600, default_expires=300)


def test_short_nonce_is_refused() -> None:
    with pytest.raises(ValueError, match="nonce"):
        publish(nonce=b"1234")
