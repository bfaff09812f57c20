"""Which pure modules are mutated, and which tests are asked to kill their mutants.

Each module's own tests, as ``tests/`` mirrors the package: a mutant that
only an end-to-end test notices is a behaviour the module's tests do not
pin down. ``GOAL`` is the score (killed / non-equivalent mutants) each
module is held to.
"""

from __future__ import annotations

GOAL = 95.0

TARGETS: dict[str, tuple[str, ...]] = {
    "gateway/model.py": ("tests/test_model.py",),
    "gateway/wire.py": ("tests/test_wire.py",),
    "gateway/sources/endstatus.py": ("tests/sip/test_endstatus.py",),
    "gateway/sources/sip/dialoginfo.py": (
        "tests/sip/test_dialoginfo.py",
        "tests/sip/test_dialoginfo_limits.py",
    ),
    "gateway/sources/sip/dialog_watch.py": (
        "tests/sip/test_dialog_watch.py",
        "tests/sip/test_dialog_watch_properties.py",
        "tests/sip/test_call_identity.py",
    ),
    "gateway/sources/ownership_rules.py": ("tests/sources/test_ownership_rules.py",),
    "gateway/sources/webhooks/common.py": (
        "tests/webhooks/test_common.py",
        "tests/webhooks/test_twilio.py",
        "tests/webhooks/test_telnyx.py",
        "tests/webhooks/test_vonage.py",
        "tests/webhooks/test_order.py",
    ),
    "gateway/sources/webhooks/twilio.py": (
        "tests/webhooks/test_twilio.py",
        "tests/webhooks/test_recording_callbacks.py",
    ),
    "gateway/sources/webhooks/telnyx.py": (
        "tests/webhooks/test_telnyx.py",
        "tests/webhooks/test_recording_callbacks.py",
    ),
    "gateway/sources/webhooks/vonage.py": (
        "tests/webhooks/test_vonage.py",
        "tests/webhooks/test_recording_callbacks.py",
    ),
    "gateway/users/phone.py": ("tests/users/test_phone.py",),
    "gateway/auth/tokens.py": ("tests/auth/test_tokens.py",),
    "gateway/dial/policy.py": ("tests/dial/test_policy.py",),
    "gateway/auth/hubspot_signature.py": ("tests/auth/test_hubspot_signature.py",),
    "gateway/recordings/ranges.py": ("tests/recordings/test_ranges.py",),
    "gateway/recordings/links.py": ("tests/recordings/test_links.py",),
}
