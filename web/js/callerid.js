// HubSpot's caller-id match for an inbound call (onCallerIdMatchSucceeded:
// {callerIdMatches: [ContactIdMatch | CompanyIdMatch]}, the SDK's types) as
// the page shows it: the first match's kind, name and record coordinates.
// No DOM, no SDK.

// The SDK's ObjectCoordinates.objectTypeId for each kind.
const OBJECT_TYPE = { CONTACT: "0-1", COMPANY: "0-2" };

export function callerFromMatch(data) {
  const matches = data && Array.isArray(data.callerIdMatches) ? data.callerIdMatches : [];
  const first = matches.find((m) => m && OBJECT_TYPE[m.callerIdType]);
  if (!first) return { kind: "none", name: "", coordinates: null, count: 0 };
  const name =
    first.callerIdType === "CONTACT"
      ? [first.firstName, first.lastName].filter((part) => typeof part === "string" && part).join(" ") ||
        first.email ||
        ""
      : (typeof first.name === "string" && first.name) || "";
  const c = first.objectCoordinates || {};
  const coordinates =
    c.portalId && c.objectId
      ? { portalId: c.portalId, objectId: c.objectId, objectTypeId: c.objectTypeId || OBJECT_TYPE[first.callerIdType] }
      : null;
  return { kind: first.callerIdType === "CONTACT" ? "contact" : "company", name, coordinates, count: matches.length };
}
