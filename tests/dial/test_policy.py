"""The dial policy: each rule, at its boundaries (pure)."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest

from gateway.dial.policy import DialPolicy, DialRequest, allow_entry_valid, plan_dial
from gateway.dial.routes import DialPlan, Refusal
from gateway.model import Phase

OWN = ("+15555550101", "+15555550109")


def plan(number: str, policy: DialPolicy | None = None, caller_id: str | None = None) -> DialPlan | Refusal:
    request = DialRequest("u1", 100, number, OWN, caller_id)
    return plan_dial(request, policy or DialPolicy(), "demo", "abc123")


def refusal(number: str, policy: DialPolicy | None = None, caller_id: str | None = None) -> Refusal:
    result = plan(number, policy, caller_id)
    assert isinstance(result, Refusal), result
    return result


def test_a_number_typed_in_any_form_becomes_e164_with_the_users_first_number_as_caller_id() -> None:
    result = plan("(212) 555-0100")
    assert result == DialPlan("u1", 100, "abc123", "+12125550100", "+15555550101", "demo")
    assert result.call_key == "dial:abc123"


@pytest.mark.parametrize("typed", ["+1 212 555 0100", "001 212 555 0100", "tel:+12125550100", "212.555.0100"])
def test_international_and_uri_spellings_of_the_same_number_give_the_same_target(typed: str) -> None:
    result = plan(typed)
    assert isinstance(result, DialPlan) and result.target == "+12125550100"


@pytest.mark.parametrize("typed", ["", "   ", "call me", "1001", "555-0100", "sip:bob@example.com"])
def test_what_is_no_dialable_number_is_refused_with_422(typed: str) -> None:
    result = refusal(typed)
    assert (result.status, result.reason) == (422, "bad-number")
    assert "is not a phone number that can be dialled" in result.message


def test_premium_rate_is_refused_with_403_unless_allowed() -> None:
    result = refusal("+1 900 555 0100")
    assert (result.status, result.reason) == (403, "premium")
    assert result.message == "+19005550100 is a premium-rate number, which your portal may not dial"
    assert isinstance(plan("+1 900 555 0100", DialPolicy(premium=True)), DialPlan)


def test_toll_free_is_not_premium() -> None:
    assert isinstance(plan("+1 800 555 0100"), DialPlan)


def test_another_country_is_refused_with_403_unless_international_is_allowed() -> None:
    result = refusal("+49 30 123456")
    assert (result.status, result.reason) == (403, "international")
    assert result.message == "+4930123456 is outside US, and your portal may not dial other countries"
    assert isinstance(plan("+49 30 123456", DialPolicy(international=True)), DialPlan)


def test_a_country_sharing_the_home_country_code_is_still_international() -> None:
    # +1 876 is Jamaica: same country code as the US, a classic fraud target.
    assert refusal("+1 876 555 0100").reason == "international"


def test_the_home_region_decides_what_is_domestic() -> None:
    german = DialPolicy(home_region="DE")
    result = plan("030 123456", german)
    assert isinstance(result, DialPlan) and result.target == "+4930123456"
    assert refusal("+1 212 555 0100", german).reason == "international"


def test_international_premium_numbers_need_both_flags() -> None:
    policy = DialPolicy(international=True)
    assert refusal("+44 909 879 0000", policy).reason == "premium"
    assert isinstance(plan("+44 909 879 0000", DialPolicy(international=True, premium=True)), DialPlan)


def test_an_allow_list_admits_only_numbers_under_one_of_its_prefixes() -> None:
    policy = DialPolicy(allow=("+1212", "+1415555xxxx"))
    assert isinstance(plan("+1 212 555 0100", policy), DialPlan)
    assert isinstance(plan("+1 415 555 0100", policy), DialPlan)
    result = refusal("+1 213 555 0100", policy)
    assert (result.status, result.reason) == (403, "not-allowed")
    assert result.message == "+12135550100 is not among the numbers your portal may dial"


def test_an_allow_entry_longer_than_the_number_does_not_match() -> None:
    assert refusal("+1 212 555 0100", DialPolicy(allow=("+121255501000",))).reason == "not-allowed"


def test_the_allow_list_does_not_lift_the_international_rule() -> None:
    assert refusal("+49 30 123456", DialPolicy(allow=("+49",))).reason == "international"


@pytest.mark.parametrize(
    ("entry", "valid"),
    [
        ("+1", True),
        ("+4930xx", True),
        ("+1234567890123456", False),
        ("1212", False),
        ("+", False),
        ("+1*", False),
    ],
)
def test_allow_entries_are_e164_prefixes_with_x_wildcards(entry: str, valid: bool) -> None:
    assert allow_entry_valid(entry) is valid


def test_the_caller_id_asked_for_must_be_one_of_the_users_numbers() -> None:
    result = plan("+1 212 555 0100", caller_id="(555) 555-0109")
    assert isinstance(result, DialPlan) and result.caller_id == "+15555550109"
    refused = refusal("+1 212 555 0100", caller_id="+1 555 555 0177")
    assert (refused.status, refused.reason) == (403, "caller-id")
    assert refused.message == "'+1 555 555 0177' is not one of your own numbers"


def test_a_user_without_numbers_of_their_own_cannot_dial_through_a_route_that_needs_a_caller_id() -> None:
    result = plan_dial(DialRequest("u1", 100, "+12125550100", ()), DialPolicy(), "demo", "x")
    assert isinstance(result, Refusal)
    assert (result.status, result.reason) == (409, "no-caller-id")


def without_numbers(caller_id: str | None = None, *, chooses_caller_id: bool = False) -> DialPlan | Refusal:
    """A dial by a user with no number of their own, through a PBX that presents a caller id of its own."""
    request = DialRequest("u1", 100, "+1 212 555 0100", (), caller_id)
    return plan_dial(
        request, DialPolicy(), "sip", "abc123", chooses_caller_id=chooses_caller_id, needs_caller_id=False
    )


@pytest.mark.parametrize("chooses_caller_id", [False, True], ids=["sip", "ami-esl"])
def test_a_user_without_numbers_dials_through_a_pbx_with_no_caller_id_of_the_gateways(
    chooses_caller_id: bool,
) -> None:
    result = without_numbers(chooses_caller_id=chooses_caller_id)
    assert result == DialPlan("u1", 100, "abc123", "+12125550100", None, "sip")
    # The call starts with no caller id: the PBX's, reported later, is the one it keeps.
    assert result.signal(Phase.RINGING, 1).from_number is None


def test_a_user_without_numbers_asking_for_a_caller_id_is_refused_as_it_is_not_theirs() -> None:
    refused = without_numbers("+1 555 555 0101")
    assert isinstance(refused, Refusal)
    assert (refused.status, refused.reason) == (403, "caller-id")
    assert refused.message == "'+1 555 555 0101' is not one of your own numbers"


def test_a_real_number_of_the_home_region_is_domestic() -> None:
    result = plan("+1 650 253 0000")
    assert isinstance(result, DialPlan) and result.target == "+16502530000"


def test_an_empty_number_is_named_as_such() -> None:
    assert refusal("   ").message == "'an empty number' is not a phone number that can be dialled"


def test_a_user_without_numbers_is_told_why() -> None:
    result = plan_dial(DialRequest("u1", 100, "+12125550100", ()), DialPolicy(), "demo", "x")
    assert isinstance(result, Refusal)
    assert result.message == "you have no phone number of your own to call from"


def test_a_policy_and_a_request_cannot_be_changed_once_made() -> None:
    for made in (DialPolicy(), DialRequest("u1", 100, "+1", OWN)):
        with pytest.raises(FrozenInstanceError):
            made.tenant = 7  # type: ignore[misc,union-attr]


def test_a_number_no_region_claims_is_domestic_by_its_country_code() -> None:
    # 555-01xx is a fictional range: the plan places it in no region.
    result = plan("+1 555 555 0199")
    assert isinstance(result, DialPlan) and result.target == "+15555550199"
    assert refusal("+1 555 555 0199", DialPolicy(home_region="GB")).reason == "international"


@pytest.mark.parametrize(
    "typed",
    ["+999 123 456", "+0 212 555 0100", "+1", "+1 212 555 0100 12345", "+1 212 555", "tel:+999123456"],
)
def test_a_plus_and_digits_that_are_no_possible_number_are_refused_with_422(typed: str) -> None:
    # Digits beyond a number would reach the telephony (and pass an allow-list prefix).
    result = refusal(typed, DialPolicy(allow=("+1212",)))
    assert (result.status, result.reason) == (422, "bad-number")
    assert result.message == f"{typed!r} is not a phone number that can be dialled"


@pytest.mark.parametrize(
    "typed",
    ["tel:+1-212-555-0100;ext=12", "+1 212 555 0100 ext. 12", "212.555.0100 x12", "+1 212 555 0100;ext=12"],
)
def test_a_number_with_an_extension_is_refused_naming_it_rather_than_dialled_without_it(typed: str) -> None:
    result = refusal(typed)
    assert (result.status, result.reason) == (422, "bad-number")
    assert result.message == (
        f"{typed!r} has an extension (12), which the gateway cannot dial; "
        "dial the number without it and ask for the extension"
    )


def test_a_route_that_cannot_present_a_caller_id_refuses_another_than_the_users_first_number() -> None:
    def on_pbx(caller_id: str | None) -> DialPlan | Refusal:
        request = DialRequest("u1", 100, "+1 212 555 0100", OWN, caller_id)
        return plan_dial(request, DialPolicy(), "sip", "abc123", chooses_caller_id=False)

    refused = on_pbx("+1 555 555 0109")
    assert isinstance(refused, Refusal)
    assert (refused.status, refused.reason) == (409, "caller-id-unsupported")
    assert refused.message == (
        "calls through your PBX show the caller id your PBX gives your phone; "
        "the gateway cannot make them show +15555550109"
    )
    for reported_anyway in (None, "(555) 555-0101"):
        placed = on_pbx(reported_anyway)
        assert isinstance(placed, DialPlan) and placed.caller_id == "+15555550101"
    foreign = on_pbx("+1 555 555 0177")
    assert isinstance(foreign, Refusal) and foreign.reason == "caller-id"
