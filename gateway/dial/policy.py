"""A tenant's dial policy, and a dial request turned into a plan or a refusal (pure).

The guard against toll fraud: the destination must be a phone number, not
premium-rate, in the tenant's home country (unless international calls are
allowed), and on the tenant's allow-list when it has one; the caller id is
one of the user's own numbers (or, through a PBX that presents its own,
none). The rate limit is apart (``ratelimit``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType

from gateway.dial.routes import DialPlan, Refusal, no_caller_id
from gateway.users.phone import to_e164

# "+" and digits, "x" for any one digit: a prefix of the E.164 form.
_ALLOW_ENTRY = re.compile(r"^\+[0-9xX]{1,15}\Z")
# Numbers whose caller pays a premium, also when the plan calls them shared.
_PREMIUM = frozenset({PhoneNumberType.PREMIUM_RATE})


def allow_entry_valid(entry: str) -> bool:
    return bool(_ALLOW_ENTRY.match(entry))


def _matches(entry: str, number: str) -> bool:
    if len(number) < len(entry):
        return False
    return all(e in "xX" or e == n for e, n in zip(entry, number, strict=False))


@dataclass(frozen=True)
class DialPolicy:
    """What one tenant may dial."""

    home_region: str = "US"  # ISO 3166 code; numbers are read as dialled from there
    allow: tuple[str, ...] = ()  # E.164 prefixes ("+1415", "+4930xx"); empty: any number
    international: bool = False
    premium: bool = False


@dataclass(frozen=True)
class DialRequest:
    user_id: str
    tenant: int
    number: str  # as typed in HubSpot, any form
    own_numbers: Sequence[str]  # the user's numbers in E.164
    caller_id: str | None = None  # asked for; None: the user's first number


def _refuse(status: int, reason: str, message: str) -> Refusal:
    return Refusal(status, reason, message)


def _extension(typed: str, region: str) -> str | None:
    """The extension written with a number ("ext. 12", "x12", RFC 3966 ";ext=12"), if any."""
    try:
        return phonenumbers.parse(typed, region).extension or None
    except phonenumbers.NumberParseException:
        return None


def _target(typed: str, region: str) -> phonenumbers.PhoneNumber | Refusal:
    """The number to call, which must have a possible E.164 form: no digits left over, none missing."""
    extension = _extension(typed, region)
    if extension is not None:
        # Only the number could be dialled: the extension would be lost without a word.
        return _refuse(
            422,
            "bad-number",
            f"{typed!r} has an extension ({extension}), which the gateway cannot dial; "
            "dial the number without it and ask for the extension",
        )
    target = to_e164(typed, region)
    try:
        parsed = phonenumbers.parse(target, None) if target and target.startswith("+") else None
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_possible_number(parsed):
        return _refuse(
            422, "bad-number", f"{typed or 'an empty number'!r} is not a phone number that can be dialled"
        )
    return parsed


def _caller_id(
    request: DialRequest, region: str, chooses_caller_id: bool, needs_caller_id: bool
) -> str | Refusal | None:
    """The user's first number, or the one asked for if it is theirs and the route can present it.

    None for a user without a number on a route whose PBX presents a caller
    id of its own: the one it gives the user's phone.
    """
    if not request.own_numbers:
        if needs_caller_id:
            return no_caller_id()
        if request.caller_id is not None:
            return _refuse(403, "caller-id", f"{request.caller_id!r} is not one of your own numbers")
        return None
    if request.caller_id is None:
        return request.own_numbers[0]
    wanted = to_e164(request.caller_id, region)
    if wanted is None or wanted not in request.own_numbers:
        return _refuse(403, "caller-id", f"{request.caller_id!r} is not one of your own numbers")
    # A route whose PBX decides reports the user's first number: asking for
    # it changes nothing, asking for another would be reported but not used.
    if not chooses_caller_id and wanted != request.own_numbers[0]:
        return _refuse(
            409,
            "caller-id-unsupported",
            f"calls through your PBX show the caller id your PBX gives your phone; "
            f"the gateway cannot make them show {wanted}",
        )
    return wanted


def plan_dial(
    request: DialRequest,
    policy: DialPolicy,
    route: str,
    call_id: str,
    *,
    chooses_caller_id: bool = True,
    needs_caller_id: bool = True,
) -> DialPlan | Refusal:
    """The plan for ``request`` under ``policy``, or the first rule it breaks.

    ``chooses_caller_id``: whether the route presents the caller id it is
    given; ``needs_caller_id``: whether it needs one (``Dialler``).
    """
    parsed = _target(request.number.strip(), policy.home_region)
    if isinstance(parsed, Refusal):
        return parsed
    target = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    if phonenumbers.number_type(parsed) in _PREMIUM and not policy.premium:
        return _refuse(403, "premium", f"{target} is a premium-rate number, which your portal may not dial")
    region = phonenumbers.region_code_for_number(parsed)
    home_code = phonenumbers.country_code_for_region(policy.home_region)
    # A number the plan does not place in a region (fictional ranges) is
    # home when its country code is; a known region must be the home one,
    # which keeps +1 876 (Jamaica) international for a US tenant.
    international = region != policy.home_region if region else parsed.country_code != home_code
    if international and not policy.international:
        return _refuse(
            403,
            "international",
            f"{target} is outside {policy.home_region}, and your portal may not dial other countries",
        )
    if policy.allow and not any(_matches(entry, target) for entry in policy.allow):
        return _refuse(403, "not-allowed", f"{target} is not among the numbers your portal may dial")
    caller_id = _caller_id(request, policy.home_region, chooses_caller_id, needs_caller_id)
    if isinstance(caller_id, Refusal):
        return caller_id
    return DialPlan(
        user_id=request.user_id,
        tenant=request.tenant,
        call_id=call_id,
        target=target,
        caller_id=caller_id,
        route=route,
    )
