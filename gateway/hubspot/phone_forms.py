"""The ways a number may be written in a HubSpot phone field, for the search (pure).

HubSpot's phone properties hold what people typed: ``+49 30 1234567``,
``030 1234567``, ``(555) 555-0123``, ``5555550123``. The search compares
strings, so the gateway asks for each usual form of the number.
"""

from __future__ import annotations

import phonenumbers

# HubSpot's search takes at most 100 values in an IN filter.
MAX_FORMS = 100


def phone_forms(number: str) -> list[str]:
    """Distinct forms of an E.164 ``number``, the E.164 form first; [number] if it does not parse."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return [number]
    fmt = phonenumbers.PhoneNumberFormat
    e164 = phonenumbers.format_number(parsed, fmt.E164)
    international = phonenumbers.format_number(parsed, fmt.INTERNATIONAL)
    national = phonenumbers.format_number(parsed, fmt.NATIONAL)
    national_digits = "".join(c for c in national if c.isdigit())
    significant = phonenumbers.national_significant_number(parsed)
    candidates = [
        e164,
        international,
        national,
        national_digits,
        significant,
        e164.removeprefix("+"),
        "00" + e164.removeprefix("+"),
        international.replace(" ", "-"),
        international.replace(" ", ""),
        national.replace(" ", ""),
        national.replace(" ", "-"),
    ]
    forms: list[str] = []
    for form in candidates:
        if form and form not in forms:
            forms.append(form)
    return forms[:MAX_FORMS]
