"""``application/dialog-info+xml`` (RFC 4235, erratum 1495) to plain data.

Sans-I/O: bytes in, a frozen ``DialogInfo`` or a ``DialogInfoError`` out.
The body comes from the network, so it is treated as hostile: size, depth,
element count, dialog count and string lengths are capped before anything
is built from it, and defusedxml refuses DTDs, entity declarations and
external references (no billion laughs, no XXE).

What real PBXes send, and how it lands here:

- Asterisk (res_pjsip hints): ``state="full"`` always, exactly one dialog
  whose ``id`` is the extension (reused for every call), no ``call-id``, no
  tags, no ``event``/``code``. Only while ringing (``early``) does it add
  ``direction="recipient"`` and ``<remote><identity display=…>`` (the caller;
  ``sip:anonymous@anonymous.invalid`` when withheld). Idle is a dialog in
  ``terminated``.
- FreeSWITCH (mod_sofia): one dialog per channel, ``id`` the channel uuid,
  ``direction`` set, ``<local>``/``<remote>`` identities with ``display``
  while early or confirmed, no ``call-id``.
- Kamailio/OpenSIPS ``pua_dialoginfo`` (PUBLISH) and ``presence_dialoginfo``
  (NOTIFY, which aggregates publications, so several dialogs): ``call-id``,
  tags, ``direction``, identities; states may be capitalised (``Trying``),
  so states and reasons are compared case-insensitively.

Unknown elements and attributes (other namespaces, ``<duration>``,
``<route-set>`` …) are ignored, as RFC 4235 asks. A dialog id listed twice
keeps its later entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

import defusedxml.ElementTree as safe_et
from defusedxml import DefusedXmlException

from gateway.parsing import parse_decimal

NAMESPACE = "urn:ietf:params:xml:ns:dialog-info"
CONTENT_TYPE = "application/dialog-info+xml"

MAX_BYTES = 65536
MAX_DEPTH = 24
MAX_ELEMENTS = 4096
MAX_DIALOGS = 128
MAX_VALUE_CHARS = 1024
# RFC 4235 says xs:nonNegativeInteger; the counters PBXes keep are 32-bit.
MAX_VERSION = 2**63 - 1

# The XML declaration may name any of Python's codecs ("rot13", "zlib",
# "idna" ...), each failing its own way inside expat: only these are read.
ENCODINGS = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})

DIALOG_STATES = ("trying", "proceeding", "early", "confirmed", "terminated")

_DECLARED_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*?\sencoding\s*=\s*["']([^"']{0,64})["']""")

DocState = Literal["full", "partial"]
DialogDirection = Literal["initiator", "recipient"]


class DialogInfoError(ValueError):
    """The body is not a dialog-info document this gateway accepts."""


@dataclass(frozen=True)
class Dialog:
    """One ``<dialog>`` of a document."""

    id: str
    state: str
    call_id: str | None = None
    local_tag: str | None = None
    remote_tag: str | None = None
    direction: DialogDirection | None = None
    event: str | None = None
    code: int | None = None
    remote_identity: str | None = None
    remote_display: str | None = None
    remote_target: str | None = None
    local_identity: str | None = None
    local_display: str | None = None
    local_target: str | None = None
    # The call-id of the dialog this one replaces (attended transfer, RFC 3891).
    replaces_call_id: str | None = None


@dataclass(frozen=True)
class DialogInfo:
    """A whole ``<dialog-info>`` document."""

    version: int
    state: DocState
    entity: str
    dialogs: tuple[Dialog, ...]


def _q(name: str) -> str:
    return f"{{{NAMESPACE}}}{name}"


_ROOT = _q("dialog-info")
_DIALOG = _q("dialog")
_STATE = _q("state")
_LOCAL = _q("local")
_REMOTE = _q("remote")
_IDENTITY = _q("identity")
_TARGET = _q("target")
_REPLACES = _q("replaces")


def parse_dialog_info(body: bytes, *, max_bytes: int = MAX_BYTES) -> DialogInfo:
    """Parse one dialog-info document, or raise ``DialogInfoError`` saying why."""
    if len(body) > max_bytes:
        raise DialogInfoError(f"dialog-info body is {len(body)} bytes, over the {max_bytes} byte limit")
    if not body.strip():
        raise DialogInfoError("dialog-info body is empty")
    root = _parse_capped(body)
    if root.tag != _ROOT:
        raise DialogInfoError(f"root element is {_describe(root.tag)}, expected dialog-info in {NAMESPACE}")
    version = _version(root.get("version"))
    state = (root.get("state") or "").strip().lower()
    if state not in ("full", "partial"):
        raise DialogInfoError(f"dialog-info state is {root.get('state')!r}, expected 'full' or 'partial'")
    entity = _value(root.get("entity"), "dialog-info entity")
    if entity is None:
        raise DialogInfoError("dialog-info has no entity attribute")
    # One dialog per id; a presence server that kept two entries for one call
    # (Kamailio's presence_dialoginfo can) lists it twice: the later entry is
    # the newer one, and refusing the whole document would lose every call in it.
    by_id: dict[str, Dialog] = {}
    for element in root.findall(_DIALOG):
        dialog = _dialog(element)
        by_id.pop(dialog.id, None)
        by_id[dialog.id] = dialog
    dialogs = tuple(by_id.values())
    doc_state: DocState = "full" if state == "full" else "partial"
    return DialogInfo(version=version, state=doc_state, entity=entity, dialogs=dialogs)


def _check_utf8(body: bytes) -> None:
    """Only UTF-8 is read, whatever the body declares or however it begins.

    The declaration is read whole (it may be padded with blanks), after an
    optional UTF-8 byte-order mark; a NUL is refused as XML refuses it, and
    so is UTF-16, which expat would otherwise detect from its NULs.
    """
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        raise DialogInfoError("dialog-info is not UTF-8") from None
    if b"\x00" in body:
        raise DialogInfoError("dialog-info holds a NUL character")
    declared = _DECLARED_ENCODING.match(body.removeprefix(b"\xef\xbb\xbf"))
    if declared is not None and declared.group(1).decode("latin-1").strip().lower() not in ENCODINGS:
        raise DialogInfoError(f"dialog-info declares encoding {declared.group(1)[:32]!r}; only UTF-8 is read")


class _CappedBuilder(TreeBuilder):
    """The standard tree builder, counting as it goes: a cap crossed stops the parse at once.

    Fed by defusedxml's parser directly: ``iterparse`` would do the same
    work with an event queue and a class made anew for every call.
    """

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.elements = 0
        self.dialogs = 0

    def start(self, tag: str, attrs: dict[str, str]) -> Element:
        self.depth += 1
        self.elements += 1
        if self.depth > MAX_DEPTH:
            raise DialogInfoError(f"dialog-info nests deeper than {MAX_DEPTH} elements")
        if self.elements > MAX_ELEMENTS:
            raise DialogInfoError(f"dialog-info has more than {MAX_ELEMENTS} elements")
        if self.depth == 2 and tag == _DIALOG:
            self.dialogs += 1
            if self.dialogs > MAX_DIALOGS:
                raise DialogInfoError(f"dialog-info has more than {MAX_DIALOGS} dialogs")
        return super().start(tag, attrs)

    def end(self, tag: str) -> Element:
        self.depth -= 1
        return super().end(tag)


def _parse_capped(body: bytes) -> Element:
    """Build the tree, stopping as soon as a cap is crossed."""
    _check_utf8(body)
    try:
        # Any DOCTYPE is refused as it starts, so no entity declaration or
        # external reference is ever read (defusedxml refuses those too).
        parser = safe_et.XMLParser(target=_CappedBuilder(), forbid_dtd=True)
        parser.feed(body)
        root: Element = parser.close()
    except DefusedXmlException as exc:
        raise DialogInfoError(f"dialog-info refused: {type(exc).__name__} ({exc})") from None
    except ParseError as exc:
        raise DialogInfoError(f"dialog-info is not well-formed XML: {exc}") from None
    except DialogInfoError:
        raise
    # expat on encodings it cannot use (a UnicodeError is a ValueError)
    except (LookupError, ValueError) as exc:
        raise DialogInfoError(f"dialog-info cannot be decoded: {type(exc).__name__} ({exc})") from None
    return root


def _describe(tag: str) -> str:
    if tag.startswith("{"):
        ns, _, local = tag[1:].partition("}")
        return f"{local!r} in namespace {ns!r}"
    return f"{tag!r} without a namespace"


def _version(raw: str | None) -> int:
    if raw is None:
        raise DialogInfoError("dialog-info has no version attribute")
    version = parse_decimal(raw.strip(), max_digits=19)
    if version is None or version > MAX_VERSION:
        raise DialogInfoError(f"dialog-info version {raw[:32]!r} is not a non-negative integer")
    return version


def _value(raw: str | None, what: str) -> str | None:
    """An attribute or text value: stripped, None when empty, length-capped."""
    if raw is None:
        return None
    text = raw.strip()
    if len(text) > MAX_VALUE_CHARS:
        raise DialogInfoError(f"{what} is longer than {MAX_VALUE_CHARS} characters")
    return text or None


def _dialog(el: Element) -> Dialog:
    dialog_id = _value(el.get("id"), "dialog id")
    if dialog_id is None:
        raise DialogInfoError("a dialog has no id attribute")
    where = f"dialog {dialog_id!r}"
    state_el = el.find(_STATE)
    if state_el is None:
        raise DialogInfoError(f"{where} has no state element")
    state = (state_el.text or "").strip().lower()
    if state not in DIALOG_STATES:
        raise DialogInfoError(
            f"{where} state {(state_el.text or '')[:32]!r} is not one of {', '.join(DIALOG_STATES)}"
        )
    direction_raw = _value(el.get("direction"), f"{where} direction")
    direction: DialogDirection | None = None
    if direction_raw is not None:
        lowered = direction_raw.lower()
        if lowered == "initiator":
            direction = "initiator"
        elif lowered == "recipient":
            direction = "recipient"
        else:
            raise DialogInfoError(f"{where} direction {direction_raw[:32]!r} is not initiator or recipient")
    event = _value(state_el.get("event"), f"{where} state event")
    code_raw = _value(state_el.get("code"), f"{where} state code")
    code: int | None = None
    if code_raw is not None:
        code = parse_decimal(code_raw, max_digits=3)
        if code is None or not 100 <= code <= 699:
            raise DialogInfoError(f"{where} state code {code_raw[:32]!r} is not a SIP response code")
    remote_identity, remote_display, remote_target = _party(el.find(_REMOTE), f"{where} remote")
    local_identity, local_display, local_target = _party(el.find(_LOCAL), f"{where} local")
    replaces = el.find(_REPLACES)
    return Dialog(
        id=dialog_id,
        state=state,
        call_id=_value(el.get("call-id"), f"{where} call-id"),
        local_tag=_value(el.get("local-tag"), f"{where} local-tag"),
        remote_tag=_value(el.get("remote-tag"), f"{where} remote-tag"),
        direction=direction,
        event=event.lower() if event else None,
        code=code,
        remote_identity=remote_identity,
        remote_display=remote_display,
        remote_target=remote_target,
        local_identity=local_identity,
        local_display=local_display,
        local_target=local_target,
        replaces_call_id=None
        if replaces is None
        else _value(replaces.get("call-id"), f"{where} replaces call-id"),
    )


def _party(el: Element | None, where: str) -> tuple[str | None, str | None, str | None]:
    """(identity URI, display name, target URI) of a <local> or <remote>."""
    if el is None:
        return None, None, None
    identity_el = el.find(_IDENTITY)
    target_el = el.find(_TARGET)
    identity = display = target = None
    if identity_el is not None:
        identity = _value(identity_el.text, f"{where} identity")
        display = _value(identity_el.get("display"), f"{where} display name")
    if target_el is not None:
        target = _value(target_el.get("uri"), f"{where} target")
    return identity, display, target
