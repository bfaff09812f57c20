// The wrap-up after a call: until when the page waits for the user's notes
// and outcome, and the callCompleted argument they end up in. No DOM, no SDK.

// The wrap-up ends this long after the call ended, wherever the page
// learns of it: a reload does not start the wait again.
export function wrapUpDeadline(call, timeoutSeconds, now = Date.now()) {
  const ended = call && call.endedAt && call.endedAt <= now + 5_000 ? call.endedAt : now;
  return ended + timeoutSeconds * 1000;
}

// HubSpot shows hs_call_body as rich text: the notes go in as text, each
// line kept.
export function notesAsBody(notes) {
  const escaped = notes.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  return escaped.split(/\r?\n/).join("<br>");
}

// The gateway's callCompleted argument with the user's notes
// (hs_call_body) and outcome (hs_call_disposition, the GUID of one of the
// portal's call outcomes) added; what the user left empty stays out.
export function completionArgs(args, { notes = "", outcome = "" } = {}) {
  const properties = { ...(args.engagementProperties || {}) };
  if (notes) properties.hs_call_body = notesAsBody(notes);
  if (outcome) properties.hs_call_disposition = outcome;
  return { ...args, engagementProperties: properties };
}
