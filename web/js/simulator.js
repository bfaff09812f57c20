// A stand-in for HubSpot: hosts the calling page through the SDK's own host
// side (IFrameManager with iFrameOptions) and logs every message both ways.
//
// window.hostLog holds each message as {dir: "in"|"out", type, data, at};
// the browser tests read it, so it records what crossed postMessage, not
// what the page meant to send.

import { Constants, IFrameManager } from "./sdk.js";
import { Session } from "./api.js";

const { messageType } = Constants;
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

window.hostLog = [];
let manager = null;
let context = {
  // The demo user of `./dev run` lives in portal 1 and has no HubSpot user id.
  portalId: Number(params.get("portalId") || 1),
  userId: params.get("userId") ? Number(params.get("userId")) : undefined,
};
// Where HubSpot says the widget is: "widget" (the default), "window" (the
// calling window) or "remote" (the widget on a record while the calling
// window is in use); ?iframeLocation=remote&usesCallingWindow=1.
const surface = {
  iframeLocation: params.get("iframeLocation") || "widget",
  usesCallingWindow: params.get("usesCallingWindow") === "1",
};
let lastCallId = "";
// Cross-site: the widget comes from the gateway's other loopback name, a
// different site to the browser, as HubSpot's page and the gateway are. The
// browser then treats it as a third-party frame: Chromium, by default,
// refuses it storage and unpartitioned cookies.
const TWINS = { "127.0.0.1": "localhost", localhost: "127.0.0.1" };
let crossSite = params.get("crossSite") === "1" && Boolean(TWINS[location.hostname]);

function widgetUrl() {
  const url = new URL("./", location.href);
  if (crossSite) url.hostname = TWINS[location.hostname];
  return url.toString();
}

function record(dir, message) {
  const payload = message.data ?? payloadOf(message);
  const entry = { dir, type: message.type, data: payload ?? null, at: Date.now() };
  window.hostLog.push(entry);
  const item = document.createElement("li");
  item.className = dir;
  const head = document.createElement("div");
  head.className = "head";
  const arrow = document.createElement("span");
  arrow.className = "dir";
  arrow.textContent = dir === "out" ? "HubSpot → app" : "app → HubSpot";
  const type = document.createElement("strong");
  type.textContent = message.type;
  const time = document.createElement("time");
  time.textContent = new Date(entry.at).toLocaleTimeString();
  head.append(arrow, type, time);
  item.append(head);
  if (payload !== undefined) {
    const pre = document.createElement("pre");
    pre.textContent = JSON.stringify(payload, null, 2);
    item.append(pre);
  }
  const log = $("log");
  log.prepend(item);
}

// SYNC and SYNC_ACK carry their fields at the top level, not under data.
function payloadOf(message) {
  const { type, messageId, ...rest } = message;
  return Object.keys(rest).length ? rest : undefined;
}

// HubSpot's SYNC tells the app who is looking at it; the SDK's own host
// sends only hostUrl, so the simulator adds the portal and user here.
class SimulatedHubSpot extends IFrameManager {
  sendMessage(message, callback) {
    let outgoing = message;
    let answered = callback;
    if (message.type === messageType.SYNC) {
      outgoing = {
        ...message,
        portalId: context.portalId,
        userId: context.userId,
        ownerId: context.userId,
        iframeLocation: surface.iframeLocation,
        usesCallingWindow: surface.usesCallingWindow,
      };
      // SYNC repeats every 100 ms until answered; log it once.
      if (!this.syncLogged) record("out", outgoing);
      this.syncLogged = true;
      answered = (data) => {
        record("in", { ...data, type: messageType.SYNC_ACK });
        callback(data);
      };
    } else {
      record("out", message);
    }
    super.sendMessage(outgoing, answered);
  }
}

function fromApp(event) {
  const { type, data } = event;
  if (type === messageType.READY) {
    $("handshake").textContent = "SYNC handshake complete";
    $("handshake").dataset.state = "ready";
    return;
  }
  if (type === messageType.SYNC_ACK_FAILED) {
    $("handshake").textContent = "The app never answered SYNC (SYNC_ACK_FAILED)";
    $("handshake").dataset.state = "failed";
  }
  record("in", event);
  if (type === messageType.RESIZE_WIDGET && data) manager.updateIFrameSize(data);
  if (type === messageType.INCOMING_CALL) matchCaller(data);
  if (type === messageType.CALL_COMPLETED && data) updateEngagement(data);
  if (type === messageType.NAVIGATE_TO_RECORD && data) {
    const c = data.objectCoordinates || {};
    $("navigated").textContent = `${c.objectTypeId} ${c.objectId} in ${data.openIn || "(no openIn)"}`;
  }
  if (type === messageType.INCOMING_CALL || type === messageType.OUTGOING_CALL_STARTED) {
    lastCallId = data.externalCallId;
    $("engagement-call").value = lastCallId;
    if ($("auto-engagement").checked) {
      // HubSpot creates the call's engagement and answers with its id.
      const reply = (engagementId) =>
        send(messageType.CREATE_ENGAGEMENT_SUCCEEDED, { externalCallId: data.externalCallId, engagementId });
      if (hasStandin) widgetEngagement(data.externalCallId).then(reply);
      else reply(newEngagementId());
    }
  }
}

// HubSpot sets callCompleted's engagementProperties on the engagement and
// answers whether it could (onUpdateEngagementSucceeded / Failed).
function updateEngagement(call) {
  const reply = $("update-reply").value;
  const props = call.engagementProperties || {};
  const wrap = ["hs_call_disposition", "hs_call_body"].filter((name) => name in props);
  const said = wrap.map((name) => `${name}=${props[name]}`).join(", ") || "no wrap-up";
  $("updated").textContent = `${call.engagementId ?? "(no engagement)"} ${reply}: ${said}`;
  const ids = { externalCallId: call.externalCallId, engagementId: call.engagementId };
  if (reply === "SUCCEEDED") send(messageType.UPDATE_ENGAGEMENT_SUCCEEDED, ids);
  if (reply === "FAILED") send(messageType.UPDATE_ENGAGEMENT_FAILED, { ...ids, error: { message: "The simulator refused the update" } });
}

// HubSpot looks the caller up and answers with its records (the SDK's
// ContactIdMatch / CompanyIdMatch), an empty list, or a failure.
function matchCaller(call) {
  const kind = $("match-kind").value;
  if (kind === "FAILED") {
    send(messageType.CALLER_ID_MATCH_FAILED, { message: "The simulator could not look the caller up" });
    return;
  }
  const known = call && call.fromNumber === $("match-number").value.trim() && kind !== "NONE";
  const objectCoordinates = {
    portalId: context.portalId,
    objectId: Number($("match-object-id").value) || 1,
    objectTypeId: kind === "COMPANY" ? "0-2" : "0-1",
  };
  const name = $("match-name").value.trim();
  const [firstName, ...rest] = name.split(" ");
  const match =
    kind === "COMPANY"
      ? { callerIdType: "COMPANY", objectCoordinates, name }
      : { callerIdType: "CONTACT", objectCoordinates, firstName, lastName: rest.join(" "), email: "" };
  send(messageType.CALLER_ID_MATCH_SUCCEEDED, { callerIdMatches: known ? [match] : [] });
}

// In `./dev run` the engagement is made in the HubSpot stand-in's CRM (as
// HubSpot makes it in its own), so the gateway's update of it lands there
// and its page shows the call as the widget's. Elsewhere (no stand-in, as
// found once at load): a made-up id, handed out at once.
let hasStandin = false;
fetch("/dev/hubspot/")
  .then((answer) => {
    hasStandin = answer.ok;
  })
  .catch(() => {});

async function widgetEngagement(externalCallId) {
  try {
    const answer = await fetch("/dev/hubspot/sdk/engagements", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ externalCallId, portalId: context.portalId }),
    });
    if (answer.ok) return (await answer.json()).engagementId;
  } catch {
    // no stand-in here
  }
  return newEngagementId();
}

function newEngagementId() {
  return 10_000_000_000 + Math.floor(Math.random() * 89_999_999_999);
}

function send(type, data) {
  if (!manager || !manager.isReady) {
    $("handshake").textContent = "The app is not ready yet; nothing sent";
    return;
  }
  manager.sendMessage(data === undefined ? { type } : { type, data });
}

function load() {
  if (manager) manager.remove();
  $("portal-id").value = context.portalId ?? "";
  $("user-id").value = context.userId ?? "";
  $("cross-site").checked = crossSite;
  $("cross-site").disabled = !TWINS[location.hostname];
  $("widget-origin").textContent = `Widget from ${new URL(widgetUrl()).origin}${crossSite ? " (cross-site)" : ""}`;
  $("handshake").textContent = "Waiting for SYNC_ACK…";
  $("handshake").dataset.state = "waiting";
  manager = new SimulatedHubSpot({
    debugMode: false,
    iFrameOptions: {
      src: widgetUrl(),
      width: "400px",
      height: "600px",
      hostElementSelector: "#calling-widget",
    },
    onMessageHandler: fromApp,
  });
}

async function demoCall(direction) {
  if (crossSite) {
    // Its session lives with the widget's origin; this page cannot borrow it.
    $("demo-status").textContent =
      "Demo calls borrow the widget's session, which a cross-site widget keeps to itself: untick cross-site, or send signals with `gateway signal`.";
    return;
  }
  const session = new Session({ onExpired: () => {} });
  if (!session.restoreStored(context.portalId, context.userId)) {
    $("demo-status").textContent = "Sign in inside the widget first.";
    return;
  }
  // Borrow the widget's token (same origin, same tab); the widget refreshes it.
  clearTimeout(session.timer);
  try {
    const { externalCallId } = await session.demoCall(direction);
    $("demo-status").textContent = `Playing ${externalCallId}: rings, is answered after 3 s, ends 5 s later.`;
  } catch (err) {
    $("demo-status").textContent =
      err.status === 404 || err.status === 405
        ? "Demo calls exist only in dev mode (./dev run). Send signals with `gateway signal` instead."
        : `Demo call refused: ${err.message}`;
  }
}

$("context").addEventListener("submit", (event) => {
  event.preventDefault();
  const portal = $("portal-id").value.trim();
  const user = $("user-id").value.trim();
  context = { portalId: portal ? Number(portal) : undefined, userId: user ? Number(user) : undefined };
  crossSite = $("cross-site").checked;
  load();
});
$("dial-form").addEventListener("submit", (event) => {
  event.preventDefault();
  send(messageType.DIAL_NUMBER, {
    phoneNumber: $("dial-number").value.trim(),
    portalId: context.portalId,
    ownerId: context.userId,
    objectType: "CONTACT",
    subjectId: 1,
  });
});
$("engagement-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const id = Number($("engagement-id").value.trim()) || newEngagementId();
  send(messageType.CREATE_ENGAGEMENT_SUCCEEDED, {
    externalCallId: $("engagement-call").value.trim() || lastCallId,
    engagementId: id,
  });
});
$("send-engagement-failed").addEventListener("click", () =>
  send(messageType.CREATE_ENGAGEMENT_FAILED, {
    externalCallId: $("engagement-call").value.trim() || lastCallId,
    error: { message: "The simulator refused to log this call" },
  }),
);
$("send-minimize").addEventListener("click", () =>
  send(messageType.VISIBILITY_CHANGED, { isMinimized: true, isHidden: false }),
);
$("send-restore").addEventListener("click", () =>
  send(messageType.VISIBILITY_CHANGED, { isMinimized: false, isHidden: false }),
);
$("send-end").addEventListener("click", () => send(messageType.END_CALL));
$("demo-inbound").addEventListener("click", () => demoCall("inbound"));
$("demo-outbound").addEventListener("click", () => demoCall("outbound"));
$("clear-log").addEventListener("click", () => $("log").replaceChildren());

load();
