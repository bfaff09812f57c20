// The page HubSpot embeds: turns the gateway's event stream into Calling
// Extensions SDK calls, each exactly once, and shows the user what happens.

import CallingExtensions from "./sdk.js";
import { Session } from "./api.js";
import { CallBook, isStart } from "./calls.js";
import { storage } from "./storage.js";
import { GatewayStream, SeenIds } from "./stream.js";
import { View } from "./view.js";

const AVAILABLE_KEY = "gateway.available";
const WIDGET_WIDTH = 400;

const view = new View(document);
const book = new CallBook();
// A page that does not own a call (another tab passed on its start, or it
// was passed on before a reload) waits this long before claiming one of its
// events, so that the owner, if it is still there, passes it on.
const CLAIM_GRACE_MS = 1_000;
const seen = new SeenIds((last) => acknowledge(last));
let hubspot = {}; // what onReady said: portalId, userId, iframeLocation, …
let isReady = false; // the SYNC handshake is done
let lastHeight = 0;
let stream = null;
// Each call's SDK calls go out in stream order, one at a time, even while
// one waits for an engagement id; calls do not wait for each other.
const queues = new Map(); // externalCallId -> the promise its next event follows
// Bumped whenever the session ends: deliveries queued for it are dropped.
let generation = 0;

const session = new Session({
  onExpired: () => {
    showError("Your session ended; please sign in again.");
    signedOut();
  },
});

const cti = new CallingExtensions({
  debugMode: false,
  eventHandlers: {
    onReady: (data) => ready(data || {}),
    onDialNumber: (data) => dialRequested(data || {}),
    onCreateEngagementSucceeded: (data) => engagementCreated(data || {}),
    onCreateEngagementFailed: (data) => engagementFailed(data || {}),
    onEndCall: () =>
      showNotice("Hang up on your phone: the gateway watches the call and cannot end it from here."),
    onVisibilityChanged: (data) => view.setVisibility(data || {}),
    onFailed: (data, event) => failed(data || {}, event),
    // Everything else HubSpot may send (caller-id matches, engagement
    // updates, newer message types) needs no action here.
    defaultEventHandler: (data, event) => console.debug("HubSpot message", event && event.type, data),
  },
});

// HubSpot's error text: a string, or {message} (CREATE_ENGAGEMENT_FAILED
// carries it under error); never an object printed as "[object Object]".
function describe(data) {
  if (!data) return "no details";
  for (const candidate of [data.error, data.message, data]) {
    if (typeof candidate === "string" && candidate) return candidate;
    if (candidate && typeof candidate.message === "string" && candidate.message) return candidate.message;
  }
  return "no details";
}

function showError(message) {
  view.showError(message);
  cti.sendError({ message });
}

// key: one notice per subject (a call), replaced when it says something new.
function showNotice(message, key) {
  view.showNotice(message, key);
}

function failed(data, event) {
  const about = data.externalCallId ? ` about ${book.label(data.externalCallId)}` : "";
  showNotice(`HubSpot reported ${(event && event.type) || "a failure"}${about}: ${describe(data)}`, data.externalCallId);
}

function ready(data) {
  if (isReady) {
    // A second READY (SET_WIDGET_URL) only updates what HubSpot told us.
    hubspot = { ...hubspot, ...data };
    return;
  }
  hubspot = data;
  isReady = true;
  view.showHubSpot(data);
  session.restore(data.portalId, data.userId).then((restored) => {
    const init = { isLoggedIn: restored };
    if (data.engagementId) init.engagementId = data.engagementId;
    cti.initialized(init);
    if (restored) signedIn();
    else signedOut(false);
  });
}

async function logIn(login, password) {
  try {
    await session.login(login, password, hubspot.portalId, hubspot.userId);
  } catch (err) {
    view.loginFailed(err.message);
    return;
  }
  view.clearError();
  cti.userLoggedIn();
  signedIn();
}

function signedIn() {
  view.showDesk(session.user);
  const available = storage.getItem(AVAILABLE_KEY) !== "no";
  view.setAvailable(available);
  setAvailable(available);
  const mine = generation;
  stream = new GatewayStream({
    session,
    seen,
    onEvent: (id, event) => enqueue(id, event),
    onGap: () => showNotice("Some call events were missed while disconnected; their calls may lack details."),
    onStatus: (status) => view.setConnection(status),
    onAuthLost: () => {
      session.clear();
      showError("Your session ended; please sign in again.");
      signedOut();
    },
  });
  // Resume where the pages before this one (a reload, another tab, the
  // last session) left off; a fresh stream only when nothing was ever held.
  const started = stream;
  session
    .acknowledged()
    .catch(() => null)
    .then((lastEventId) => {
      if (mine !== generation || stream !== started) return;
      if (lastEventId && !seen.last) seen.last = lastEventId;
      stream.start();
    });
  fit();
}

// One acknowledgement in flight at a time; the newest position wins.
let acking = null;
let ackWanted = null;
function acknowledge(last) {
  ackWanted = last;
  if (acking || !last) return;
  const position = last;
  const mine = generation;
  acking = session
    .acknowledge(position)
    .catch(() => {}) // the next one carries it; a lost one costs a replay, never an event
    .finally(() => {
      acking = null;
      // A position of an ended session is never posted for the next one.
      if (mine === generation && ackWanted !== position) acknowledge(ackWanted);
    });
}

function signedOut(tell = true) {
  if (stream) stream.stop();
  stream = null;
  // Whoever signs in next (perhaps another user) starts from a fresh stream,
  // not from this session's place in it.
  seen.forget();
  ackWanted = null;
  queues.clear();
  generation += 1;
  if (tell) cti.userLoggedOut();
  view.showLogin(hubspot);
  fit();
}

function logOut() {
  session.clear();
  signedOut();
}

function setAvailable(available) {
  storage.setItem(AVAILABLE_KEY, available ? "yes" : "no");
  if (available) cti.userAvailable();
  else cti.userUnavailable();
}

function enqueue(id, event) {
  const key = (event && typeof event === "object" && event.externalCallId) || "";
  const mine = generation;
  const next = (queues.get(key) || Promise.resolve())
    .then(() => deliver(id, event, mine))
    .catch((err) => {
      if (mine !== generation) return;
      seen.add(id);
      showError(`Could not pass event ${id} on: ${err.message}`);
    });
  queues.set(key, next);
  // A finished chain is dropped, so the map holds only calls with work left.
  next.then(() => {
    if (queues.get(key) === next) queues.delete(key);
  });
}

async function deliver(id, event, mine) {
  const result = await book.sdkCall(event);
  if (mine !== generation) return; // the session ended meanwhile
  if (result.error) {
    seen.add(id); // it will never be passed on; replaying it would not help
    showError(`Event ${id} was not passed to HubSpot: ${result.error}`);
    return;
  }
  const callId = event.externalCallId;
  if (!isStart(event.type) && !book.owns(callId)) await sleep(CLAIM_GRACE_MS);
  if (result.method === "callEnded" && !result.args.engagementId) {
    const engagementId = await engagementFromGateway(callId);
    if (mine !== generation) return;
    if (engagementId) {
      result.args.engagementId = engagementId;
    } else {
      // The SDK's OnCallEnded requires the engagement: HubSpot has no log of
      // this call to end. callCompleted (engagement optional) still closes it.
      seen.add(id);
      view.showCalls(book.current, book.history);
      return;
    }
  }
  // Claimed just before its SDK call: a reload after the claim does not
  // send it again (nor does any other page), one before it does.
  const first = await claim(id, mine);
  if (mine !== generation) return;
  seen.add(id);
  if (first) {
    book.passedOn(event);
    cti[result.method](result.args);
  }
  view.showCalls(book.current, book.history);
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// The gateway keeps the engagement the page that started the call reported.
async function engagementFromGateway(externalCallId) {
  if (book.engagementFailedFor(externalCallId)) return null;
  try {
    return (await session.callState(externalCallId)).engagementId || null;
  } catch {
    return null; // the call is gone (404) or the gateway unreachable
  }
}

// Asks until the gateway answers (a blip must not lose the event, nor send
// it twice); gives up only when the session ends.
async function claim(id, mine) {
  for (let attempt = 0; mine === generation; attempt += 1) {
    try {
      return await session.claim(id);
    } catch (err) {
      if (err.status === 401 || err.status === 422) throw err;
      await sleep(Math.min(5_000, 250 * 2 ** attempt));
    }
  }
  return false;
}

async function engagementCreated(data) {
  const externalCallId = book.engagementCreated(data);
  if (!externalCallId) {
    console.debug("engagement for no known call", data);
    return;
  }
  try {
    await session.reportEngagement(externalCallId, data.engagementId);
  } catch (err) {
    // 404: the call is already gone from the gateway; HubSpot has the id
    // anyway, and callEnded/callCompleted carry it from here.
    if (err.status !== 404) showError(`Could not save the call's engagement: ${err.message}`);
  }
}

// callEnded/callCompleted of that call go out at once, without an
// engagement id, rather than waiting for one that will not come.
function engagementFailed(data) {
  const callId = book.engagementFailed(data) || data.externalCallId;
  const which = callId ? book.label(callId) : "a call";
  showNotice(`HubSpot could not log ${which}: ${describe(data)}`, callId);
}

// Click-to-dial: the gateway places the call and creates it first, so its
// outgoingCall (with createEngagement) comes through the stream like any
// call's; the page never sends one of its own for a dial.
async function dialRequested(data) {
  const number = data.phoneNumber || data.toPhoneNumber || "";
  view.showDial(number, "Asking the gateway to dial…");
  if (!number) {
    showError("HubSpot asked to dial but sent no number.");
    return;
  }
  // One key per click: a retry after a lost answer returns the same call.
  const key = newDialKey();
  let placed = null;
  for (let attempt = 0; attempt < 2 && !placed; attempt += 1) {
    try {
      placed = await session.dial(number, key);
    } catch (err) {
      // Only "no answer" or "try again" is worth one retry; a refusal stands.
      if (attempt === 0 && (err.status === 0 || err.status === 503)) continue;
      view.showDial(number, err.message);
      showError(`Dial refused: ${err.message}`);
      return;
    }
  }
  view.clearError();
  view.showDial(placed.number, `Dialling from ${placed.callerId}…`);
}

function newDialKey() {
  const bytes = new Uint8Array(12);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// HubSpot sizes the iframe from the app's settings; ask for more height
// only when the content needs it, in steps, so it does not flicker.
function fit() {
  // Before the SYNC handshake the SDK would drop the message anyway.
  if (!isReady) return;
  requestAnimationFrame(() => {
    const height = Math.min(720, Math.max(320, Math.ceil(document.body.scrollHeight / 40) * 40));
    if (height !== lastHeight) {
      lastHeight = height;
      // The width is the one the README asks to register; only the height
      // follows the content. (Echoing the current width back would shrink
      // the frame by its border on every resize.)
      cti.resizeWidget({ width: WIDGET_WIDTH, height });
    }
  });
}

view.onLogin = logIn;
view.onLogout = logOut;
view.onAvailability = setAvailable;
view.onChange = fit;
view.start();
// HubSpot syncs within a second; a page opened on its own never hears from it.
setTimeout(() => {
  if (!isReady) view.notEmbedded();
}, 3_000);
