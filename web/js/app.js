// The page HubSpot embeds: turns the gateway's event stream into Calling
// Extensions SDK calls, each exactly once, and shows the user what happens.

import CallingExtensions from "./sdk.js";
import { Session } from "./api.js";
import { callerFromMatch } from "./callerid.js";
import { CallBook, SDK_METHODS, loggedByGateway } from "./calls.js";
import { Surfaces } from "./coordination.js";
import { t } from "./i18n.js";
import { SdkLedger } from "./ledger.js";
import { storage } from "./storage.js";
import { GatewayStream, SeenIds, compareIds } from "./stream.js";
import { View } from "./view.js";
import { completionArgs, wrapUpDeadline } from "./wrapup.js";

const AVAILABLE_KEY = "gateway.available";
const AUTO_OPEN_KEY = "gateway.autoOpen";

const view = new View(document);
const book = new CallBook();
const ledger = new SdkLedger();
const seen = new SeenIds((last) => acknowledge(last));
// Only the leading surface (one tab, or HubSpot's calling window) talks to
// the SDK for calls; the others keep what they received here until the
// leader says it handled it, and pass it on themselves if they come to lead.
const surfaces = new Surfaces({
  onLead: (leads) => leadChanged(leads),
  onMessage: (m) => fromSurface(m),
  onJoin: () => tellHeld(),
});
const waitingForLeader = []; // [{id, event}] in stream order
// Wrap-ups the leader holds for calls this surface has not seen yet (it
// just opened): externalCallId -> deadline.
const heldElsewhere = new Map();
// The late wrap-up on show: its call's completion went out without the
// user's wrap-up (the deadline passed) and stays unacknowledged, so that a
// reload or the surface that leads next is handed it again and offers the
// wrap-up again: externalCallId -> {id, until, timer}.
const lateHeld = new Map();
// Late wrap-ups the leader keeps, on the other surfaces: externalCallId -> until.
const lateElsewhere = new Map();
// What the gateway kept of each call's wrap-up when this page opened (what
// was typed, for a frame refused storage): externalCallId -> {notes, outcome}.
const keptAtGateway = new Map();
// What went to HubSpot with each call's callCompleted, kept again at the
// gateway as owed if HubSpot refuses it: externalCallId -> {notes, outcome}.
const sentWraps = new Map();
// Typing is saved to the gateway once it pauses this long, or at once
// when the page is hidden or goes away.
const DRAFT_SAVE_MS = 500;
const draftSaves = new Map(); // externalCallId -> {timer, draft, mine}, not saved yet
let wrapUp = { timeoutSeconds: 120, dispositions: [] };
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
    showError(t("sessionEnded"));
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
    onEndCall: () => showNotice(t("hangUpOnPhone")),
    onVisibilityChanged: (data) => view.setVisibility(data || {}),
    onCallerIdMatchSucceeded: (data) => callerMatched(data || {}, callerFromMatch(data || {})),
    onCallerIdMatchFailed: (data) => callerMatched(data || {}, callerFromMatch(null)),
    onNavigateToRecordFailed: (data) => navigateFailed(data || {}),
    onUpdateEngagementFailed: (data) => updateFailed(data || {}),
    // The SDK calls this for every *_FAILED message, besides its own handler.
    onFailed: (data, event) => failed(data || {}, event),
    // Everything else HubSpot may send (engagement updates, newer message
    // types) needs no action here.
    defaultEventHandler: (data, event) => console.debug("HubSpot message", event && event.type, data),
  },
});

// HubSpot's error text: a string, or {message} (CREATE_ENGAGEMENT_FAILED
// carries it under error); never an object printed as "[object Object]".
function describe(data) {
  if (!data) return t("noDetails");
  for (const candidate of [data.error, data.message, data]) {
    if (typeof candidate === "string" && candidate) return candidate;
    if (candidate && typeof candidate.message === "string" && candidate.message) return candidate.message;
  }
  return t("noDetails");
}

function showError(message) {
  view.showError(message);
  cti.sendError({ message });
}

// key: one notice per subject (a call), replaced when it says something new.
function showNotice(message, key) {
  view.showNotice(message, key);
}

// Failures with a handler of their own say it better there; a failed
// caller-id match is no failure to the user (the number shows).
const OWN_NOTICE = new Set([
  "CREATE_ENGAGEMENT_FAILED",
  "CALLER_ID_MATCH_FAILED",
  "NAVIGATE_TO_RECORD_FAILED",
  "UPDATE_ENGAGEMENT_FAILED",
]);
function failed(data, event) {
  if (event && OWN_NOTICE.has(event.type)) return;
  const about = data.externalCallId ? t("about", { call: book.label(data.externalCallId) }) : "";
  const what = (event && event.type) || t("aFailure");
  showNotice(t("hubspotReported", { what, about, details: describe(data) }), data.externalCallId);
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
  view.setAutoOpen(storage.getItem(AUTO_OPEN_KEY) === "yes");
  const mine = generation;
  // HubSpot's remote, while its calling window is in use, never logs calls.
  const remote = Boolean(hubspot.usesCallingWindow) && hubspot.iframeLocation === "remote";
  surfaces.start(String(session.user.id || session.user.login), { mayLead: !remote });
  // Known before the stream starts: a completion it replays is held until
  // the deadline these settings give, and offers their outcomes.
  const settingsRead = session
    .wrapUpSettings()
    .then((settings) => {
      if (mine !== generation) return;
      wrapUp = settings;
      view.setDispositions(settings.dispositions || []);
    })
    .catch(() => {}); // the defaults stay: a wrap-up without outcomes
  stream = new GatewayStream({
    session,
    seen,
    onEvent: (id, event) => enqueue(id, event),
    onGap: () => showNotice(t("gap")),
    onStatus: (status) => view.setConnection(status),
    onAuthLost: () => {
      session.clear();
      showError(t("sessionEnded"));
      signedOut();
    },
  });
  // Known before the stream starts too: the wrap-ups still owed, and what
  // was typed into those a replayed completion offers again.
  const keptRead = session
    .keptWrapUps()
    .then((kept) => {
      if (mine !== generation) return;
      for (const { externalCallId, notes, outcome, owed, call } of kept) {
        keptAtGateway.set(externalCallId, { notes, outcome });
        if (owed) book.owe(externalCallId, call);
      }
      render();
    })
    .catch(() => {}); // then only what this browser kept itself
  // Resume where the pages before this one (a reload, another tab, the
  // last session) left off; a fresh stream only when nothing was ever held.
  const started = stream;
  Promise.all([session.acknowledged().catch(() => null), settingsRead, keptRead])
    .then(([lastEventId]) => {
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
  // Surfaces that only watch learn that everything up to here is handled.
  if (surfaces.leads && last) surfaces.share({ kind: "position", last });
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
  surfaces.stop();
  waitingForLeader.length = 0;
  // A wrap-up left open is replayed by the next sign-in, and wrapped up then.
  for (const entry of book.calls.values()) {
    if (entry.held) clearTimeout(entry.held.timer);
    entry.held = null;
    entry.elsewhere = null;
  }
  heldElsewhere.clear();
  for (const late of lateHeld.values()) clearTimeout(late.timer);
  lateHeld.clear();
  lateElsewhere.clear();
  for (const callId of [...book.owed.keys()]) book.settle(callId);
  keptAtGateway.clear();
  sentWraps.clear();
  for (const callId of [...draftSaves.keys()]) dropDraft(callId);
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

function setAutoOpen(on) {
  storage.setItem(AUTO_OPEN_KEY, on ? "yes" : "no");
}

function render() {
  view.showCalls(book.open, book.history, { leads: surfaces.leads || !surfaces.settled });
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
  const callId = event && typeof event === "object" ? event.externalCallId : null;
  if (callId && book.isFinished(callId)) {
    if (event.type === "callCompleted" && surfaces.leads && lateElsewhere.has(callId)) {
      // The last leader kept it for the late wrap-up: this surface does now.
      holdLate(id, callId, lateElsewhere.get(callId));
      lateElsewhere.delete(callId);
      render();
      return;
    }
    handled(id, callId, null); // a resent event of a call already completed
    return;
  }
  book.learn(event);
  if (callId && heldElsewhere.has(callId)) {
    book.entry(callId).elsewhere = { deadline: heldElsewhere.get(callId) };
    heldElsewhere.delete(callId);
  }
  if (callId && loggedByGateway(event) && !ledger.started(callId)) {
    // The gateway's own HubSpot connection logs this call: no SDK call (a
    // call this page already started in HubSpot is still ended by it).
    handled(id, callId, null);
    if (event.type === "callCompleted") book.finish(callId);
    render();
    return;
  }
  if (callId && (!surfaces.settled || !surfaces.leads)) {
    waitingForLeader.push({ id, event });
    if (event.type === "callCompleted" && lateElsewhere.has(callId)) lateShownHere(callId);
    render();
    return;
  }
  if (callId && SDK_METHODS.has(event.type) && !ledger.allows(callId, event.type)) {
    handled(id, callId, null); // made already (the stream resent it under a new id)
    render();
    return;
  }
  if (callId && event.type === "callCompleted" && heldCall(callId)) {
    handled(id, callId, null); // a second copy of the completion being wrapped up
    return;
  }
  const result = await book.sdkCall(event);
  if (mine !== generation) return; // the session ended meanwhile
  if (result.error) {
    seen.add(id); // it will never be passed on; replaying it would not help
    showError(`Event ${id} was not passed to HubSpot: ${result.error}`);
    return;
  }
  if (result.method === "callEnded" && !result.args.engagementId) {
    const engagementId = await engagementFromGateway(callId);
    if (mine !== generation) return;
    if (engagementId) {
      result.args.engagementId = engagementId;
    } else {
      // The SDK's OnCallEnded requires the engagement: HubSpot has no log of
      // this call to end. callCompleted (engagement optional) still closes it.
      ledger.record(callId, "callEnded");
      handled(id, callId, "callEnded");
      render();
      return;
    }
  }
  if (result.method === "callCompleted") {
    hold(id, callId, result.args, mine);
    return;
  }
  // Claimed just before its SDK call: a reload after the claim does not
  // send it again (nor does any other page), one before it does.
  const first = await claim(id, mine);
  if (mine !== generation) return;
  if (first && ledger.allows(callId, result.method)) {
    book.passedOn(event);
    ledger.record(callId, result.method);
    cti[result.method](result.args);
  }
  handled(id, callId, result.method);
  render();
}

// The event is dealt with here; the other surfaces hear it too.
function handled(id, callId, method) {
  seen.add(id);
  if (callId && surfaces.leads) surfaces.share({ kind: "handled", id, callId, method });
}

function heldCall(callId) {
  const entry = book.calls.get(callId);
  return entry ? entry.held : null;
}

// A surface that just opened learns which wrap-ups the leader holds: the
// completions come to it too, but only the leader waits for them.
function tellHeld() {
  if (!surfaces.leads) return;
  for (const [callId, entry] of book.calls) {
    if (entry.held) surfaces.share({ kind: "held", callId, deadline: entry.held.deadline });
  }
  for (const [callId, late] of lateHeld) surfaces.share({ kind: "late", callId, until: late.until });
}

// The call's callCompleted waits for the wrap-up: the user's save, or the
// deadline. Its event stays unacknowledged meanwhile, so a reload (or the
// surface that leads next) replays it and wraps up again, never losing it.
function hold(id, callId, args, mine) {
  const entry = book.entry(callId);
  const seconds = wrapUp.timeoutSeconds || 120;
  const deadline = wrapUpDeadline(entry.snapshot, seconds);
  const timer = setTimeout(
    () => complete(callId, view.drafts.get(callId) || {}, { byDeadline: true }),
    Math.max(0, deadline - Date.now()),
  );
  // After the deadline the wrap-up is still taken, as an update, and kept
  // across reloads for as long again; a completion replayed later than
  // that has nothing left to offer.
  const lateUntil = deadline + seconds * 1000;
  const offersLate = Date.now() < lateUntil;
  entry.held = { id, args, deadline, lateUntil, offersLate, timer, mine, saving: false };
  // The other surfaces offer the same wrap-up and send what is typed there.
  surfaces.share({ kind: "held", callId, deadline });
  render();
}

async function complete(callId, wrap, { byDeadline = false } = {}) {
  const held = heldCall(callId);
  const entry = book.calls.get(callId);
  if (!held && !entry && book.late.has(callId)) {
    await saveLate(callId, wrap);
    return;
  }
  if (!held && entry && entry.elsewhere) {
    surfaces.share({ kind: "wrapUp", callId, wrap }); // the leader sends it
    return;
  }
  if (!held || held.saving) return;
  held.saving = true;
  clearTimeout(held.timer);
  const first = await claim(held.id, held.mine);
  if (held.mine !== generation) return;
  if (first && ledger.allows(callId, "callCompleted")) {
    ledger.record(callId, "callCompleted");
    cti.callCompleted(completionArgs(held.args, wrap));
    sentWraps.set(callId, wrap);
    // Only HubSpot's answer to the last few can still come.
    if (sentWraps.size > 20) sentWraps.delete(sentWraps.keys().next().value);
  }
  book.finish(callId);
  if (byDeadline && held.offersLate) book.late.add(callId);
  if (book.late.has(callId) && book.lastShown === callId && Date.now() < held.lateUntil) {
    // Sent (here, or by the page before a reload) without the user's wrap-up.
    holdLate(held.id, callId, held.lateUntil);
  } else {
    handled(held.id, callId, "callCompleted");
  }
  render();
}

// Its completion unacknowledged, the late wrap-up is replayed to the next
// page until it is saved, while its call is the one on show.
function holdLate(id, callId, until) {
  const timer = setTimeout(() => {
    releaseLate();
    render();
  }, Math.max(0, until - Date.now()));
  lateHeld.set(callId, { id, until, timer });
  book.late.add(callId);
  // The others offer it too, and keep its event for whoever leads next.
  surfaces.share({ kind: "late", callId, until });
}

// On a surface that does not lead: the call is completed, its late wrap-up
// offered here and saved from here.
function lateShownHere(callId) {
  ledger.record(callId, "callCompleted");
  heldElsewhere.delete(callId);
  // Not before its completion is here: a completion that came to a call
  // already finished would be taken as handled, and acknowledged.
  const here = waitingForLeader.some(({ event }) => event.externalCallId === callId && event.type === "callCompleted");
  if (!here) return; // shown when it arrives
  book.finish(callId);
  book.late.add(callId);
}

// A late wrap-up stops being kept once saved, once its time is up, or once
// another call takes its place on show: its completion is handled then.
// Called where one of those happens, never from drawing.
book.onShownChanged = () => releaseLate();
function releaseLate() {
  for (const [callId, late] of lateHeld) {
    const kept = book.late.has(callId) && book.lastShown === callId && Date.now() < late.until;
    if (kept) continue;
    clearTimeout(late.timer);
    lateHeld.delete(callId);
    handled(late.id, callId, "callCompleted");
  }
}

// A wrap-up saved after the deadline completed the call: no SDK message
// sets engagement properties, so the gateway updates the engagement.
async function saveLate(callId, wrap) {
  const call = book.label(callId);
  // The save carries what was typed and the gateway then forgets its copy:
  // a draft saved after it would keep the wrap-up again.
  dropDraft(callId);
  try {
    await session.saveWrapUp(callId, wrap);
  } catch (err) {
    keepTyped(callId, err);
    showNotice(t("wrapUpNotSaved", { call, details: err.message }), callId);
    render();
    view.enableWrapUp(callId);
    return;
  }
  book.settle(callId);
  releaseLate();
  surfaces.share({ kind: "settled", callId });
  showNotice(t("wrapUpSaved", { call }), callId);
  render();
}

// The user lets an owed wrap-up go: no page offers it again.
async function discard(callId) {
  const call = book.label(callId);
  dropDraft(callId);
  try {
    await session.discardWrapUp(callId);
  } catch (err) {
    keepTyped(callId, err);
    showNotice(t("wrapUpNotDiscarded", { call, details: err.message }), callId);
    return;
  }
  book.settle(callId);
  keptAtGateway.delete(callId);
  surfaces.share({ kind: "settled", callId });
  showNotice(t("wrapUpDiscarded", { call }), callId);
  render();
}

// What is typed goes to the gateway too, once the typing pauses: a frame
// refused storage finds it there after a reload.
function keepDraft(callId, draft) {
  dropDraft(callId);
  if (!draft) {
    // The call left the list: what the gateway kept expires with the call.
    keptAtGateway.delete(callId);
    return;
  }
  const timer = setTimeout(() => saveDraft(callId), DRAFT_SAVE_MS);
  draftSaves.set(callId, { timer, draft, mine: generation });
}

// outlive: the page is going away, the save must still reach the gateway.
function saveDraft(callId, { outlive = false } = {}) {
  const pending = draftSaves.get(callId);
  dropDraft(callId);
  if (!pending || pending.mine !== generation) return;
  session.keepWrapUp(callId, pending.draft, { outlive }).catch(() => {}); // the next keystroke tries again
}

function dropDraft(callId) {
  const pending = draftSaves.get(callId);
  if (pending) clearTimeout(pending.timer);
  draftSaves.delete(callId);
}

// A save or discard the gateway refused leaves the wrap-up on show: what
// was typed into it is kept again. Not after no answer: the page may be
// going away with the request done at the gateway, and the kept wrap-up
// would come back.
function keepTyped(callId, err) {
  const draft = view.drafts.get(callId);
  if (draft && err.status) keepDraft(callId, draft);
}

// Notes typed in the last moments before a reload or a closed tab would
// wait for a timer that never fires: they go now. A page hidden may be
// discarded without another event, so hiding flushes too.
function flushDrafts() {
  for (const callId of [...draftSaves.keys()]) saveDraft(callId, { outlive: true });
}
addEventListener("pagehide", flushDrafts);
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "hidden") flushDrafts();
});

// HubSpot matched an inbound caller (or found none): shown on every
// surface; the record opens by itself when the user asked for that.
function callerMatched(data, caller) {
  const callId = book.callerMatched(data.externalCallId, caller);
  if (!callId) return;
  surfaces.share({ kind: "caller", callId, caller });
  render();
  if (storage.getItem(AUTO_OPEN_KEY) === "yes" && caller.coordinates) openRecord(callId, "NEW_TAB");
}

// navigateToRecord (the SDK's OnNavigateToRecord: objectCoordinates, the
// call's engagement, openIn CURRENT_TAB or NEW_TAB). The button opens it
// where the user is; opening it by itself takes a new tab, so nothing the
// user was doing is replaced.
function openRecord(callId, openIn = "CURRENT_TAB") {
  const entry = book.calls.get(callId);
  if (!entry || !entry.caller || !entry.caller.coordinates || !surfaces.leads) return;
  const request = { objectCoordinates: entry.caller.coordinates, openIn };
  if (entry.engagementId) request.engagementId = entry.engagementId;
  cti.navigateToRecord(request);
}

function navigateFailed(data) {
  const callId = data.externalCallId || "";
  const which = callId ? book.label(callId) : t("aCall");
  showNotice(t("couldNotOpen", { call: which, details: describe(data) }), callId || "navigate");
}

// What the leading surface tells the others.
function fromSurface(message) {
  if (!message || typeof message !== "object") return;
  if (message.kind === "caller" && message.callId) {
    book.callerMatched(message.callId, message.caller);
  } else if (message.kind === "handled" && message.id) {
    if (message.method) ledger.record(message.callId, message.method);
    dropWaiting((item) => item.id === message.id);
    if (message.method === "callCompleted") {
      book.finish(message.callId);
      heldElsewhere.delete(message.callId);
      lateElsewhere.delete(message.callId);
    }
  } else if (message.kind === "position" && message.last) {
    dropWaiting((item) => compareIds(item.id, message.last) <= 0);
  } else if (message.kind === "held" && message.callId) {
    if (book.calls.has(message.callId)) book.calls.get(message.callId).elsewhere = { deadline: message.deadline };
    else heldElsewhere.set(message.callId, message.deadline);
  } else if (message.kind === "late" && message.callId) {
    lateElsewhere.set(message.callId, message.until);
    lateShownHere(message.callId);
  } else if (message.kind === "settled" && message.callId) {
    book.settle(message.callId); // saved or discarded on another surface: kept no longer
    releaseLate();
  } else if (message.kind === "owed" && message.callId) {
    book.owe(message.callId);
  } else if (message.kind === "wrapUp" && surfaces.leads) {
    complete(message.callId, message.wrap || {});
  }
  render();
}

function dropWaiting(done) {
  for (let i = waitingForLeader.length - 1; i >= 0; i -= 1) {
    if (!done(waitingForLeader[i])) continue;
    seen.add(waitingForLeader[i].id);
    waitingForLeader.splice(i, 1);
  }
}

// This surface now leads: what it kept waiting goes through it (the
// gateway's claim skips whatever the last leader already sent).
function leadChanged(leads) {
  if (leads) {
    // The wrap-ups the last leader held are this surface's to hold now.
    for (const entry of book.calls.values()) entry.elsewhere = null;
    heldElsewhere.clear();
  }
  render();
  if (!leads) return;
  const waiting = waitingForLeader.splice(0);
  for (const { id, event } of waiting) enqueue(id, event);
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
  const which = callId ? book.label(callId) : t("aCall");
  showNotice(t("couldNotLog", { call: which, details: describe(data) }), callId);
}

// HubSpot could not save callCompleted's properties on the engagement (its
// answer to callCompleted): the wrap-up may be saved again, through the gateway.
function updateFailed(data) {
  const callId = data.externalCallId || book.lastShown;
  const which = callId ? book.label(callId) : t("aCall");
  if (callId && book.isFinished(callId)) {
    book.late.add(callId);
    // Owed until saved or discarded, on every page, after a reload too.
    book.owe(callId);
    const wrap = sentWraps.get(callId) || view.drafts.get(callId) || {};
    const kept = { notes: wrap.notes || "", outcome: wrap.outcome || "", owed: true };
    session
      .keepWrapUp(callId, kept)
      .catch((err) => showNotice(t("wrapUpNotSaved", { call: which, details: err.message }), `${callId}:kept`));
    surfaces.share({ kind: "owed", callId });
  }
  showNotice(t("updateFailed", { call: which, details: describe(data) }), callId);
  render();
}

// Click-to-dial: the gateway places the call and creates it first, so its
// outgoingCall (with createEngagement) comes through the stream like any
// call's; the page never sends one of its own for a dial.
async function dialRequested(data) {
  const number = data.phoneNumber || data.toPhoneNumber || "";
  view.showDial(number, t("askingToDial"));
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
  // No caller id: the user has no number, and their PBX presents the phone's own.
  const from = placed.callerId ? t("dialling", { callerId: placed.callerId }) : t("diallingFromPhone");
  view.showDial(placed.number, from);
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
      // Only the height follows the content. The SDK's host side sets the
      // width only when one is sent (IFrameManager.updateIFrameSize), so
      // leaving it out keeps whatever width HubSpot or its layout gave the
      // frame; a fixed width would widen a narrowed frame again, and the
      // width seen from inside (without the frame's border) would shrink it
      // a border's width on every resize.
      cti.resizeWidget({ height });
    }
  });
}

view.onLogin = logIn;
view.onLogout = logOut;
view.onAvailability = setAvailable;
view.onAutoOpen = setAutoOpen;
// Notes typed in a wrap-up survive a reload: in storage where the browser
// grants the frame some, and at the gateway (which a frame refused storage
// reads back when it opens).
view.draftStore = {
  load: (callId) => {
    try {
      const here = JSON.parse(storage.getItem(`gateway.wrapUp.${callId}`) || "null");
      return here || keptAtGateway.get(callId) || null;
    } catch {
      return keptAtGateway.get(callId) || null;
    }
  },
  save: (callId, draft) => {
    if (draft) storage.setItem(`gateway.wrapUp.${callId}`, JSON.stringify(draft));
    else storage.removeItem(`gateway.wrapUp.${callId}`);
    keepDraft(callId, draft);
  },
};
view.onOpenRecord = (callId) => openRecord(callId);
view.onWrapUp = (callId, wrap) => complete(callId, wrap);
view.onDiscard = (callId) => discard(callId);
view.onChange = fit;
view.start();
// HubSpot syncs within a second; a page opened on its own never hears from it.
setTimeout(() => {
  if (!isReady) view.notEmbedded();
}, 3_000);
