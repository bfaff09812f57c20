// What the page knows about calls: the SDK call each gateway event becomes,
// the engagement HubSpot created for each call, who is calling, and what
// the UI shows (every call still open, then the last ones).
// No DOM and no SDK here, so the rules stay in one readable place.

import { t } from "./i18n.js";
import { readableNumber } from "./format.js";

// The gateway names the SDK method; only these may be called from the stream.
// The page keeps its own list on purpose: it decides what it lets a stream
// make HubSpot do. tests/test_wire.py checks it against gateway/model.py's
// EVENT_ORDER, which owns the order.
export const SDK_METHODS = new Set([
  "incomingCall",
  "outgoingCall",
  "callAnswered",
  "callTransferred",
  "callEnded",
  "callCompleted",
]);

// HubSpot creates the engagement after incomingCall/outgoingCall and tells
// the page its id; callEnded and callCompleted should carry it. When events
// arrive back to back (a replay after a reconnect), wait this long for it.
export const ENGAGEMENT_WAIT_MS = 5_000;

const RECENT_LIMIT = 5;

// The gateway's own HubSpot connection logs some calls itself (another
// part of the gateway marks them); the page then makes no SDK call for them,
// or HubSpot would get a second log of the same call.
export function loggedByGateway(event) {
  const call = event && event.call;
  return Boolean((call && call.loggedBy === "gateway") || (event && event.loggedBy === "gateway"));
}

export class CallBook {
  constructor() {
    this.calls = new Map(); // externalCallId -> entry, open calls only
    this.waiters = new Map(); // externalCallId -> [resolve]
    this.recent = [];
    // Calls completed by the wrap-up's deadline: their wrap-up may still be
    // saved, as an update of the engagement.
    this.late = new Set();
    // Wrap-ups HubSpot refused (or a page before this one saw refused):
    // offered until saved or discarded, whatever call is on show.
    // externalCallId -> the call as last known.
    this.owed = new Map();
    this.order = 0;
    // The call finished last stays on show, as ended, until another starts.
    this.lastShown = null;
    // Told whenever the call on show changes (the page lets go of what it
    // kept for the one before).
    this.onShownChanged = () => {};
    this.done = new Set(); // finished calls: nothing reopens them
  }

  entry(externalCallId) {
    let entry = this.calls.get(externalCallId);
    if (!entry) {
      // startedHere: this page passed on the call's start (HubSpot answers
      // it with the engagement and the caller-id match). held: the call's
      // callCompleted, kept back for the wrap-up; elsewhere: the leading
      // surface holds it.
      entry = {
        snapshot: null,
        engagementId: null,
        startedHere: false,
        engagementFailed: false,
        caller: null,
        held: null,
        elsewhere: null,
        order: (this.order += 1),
      };
      this.calls.set(externalCallId, entry);
      this.show(null);
    }
    return entry;
  }

  // The newest call this page started that matches, for HubSpot answers
  // that may not name their call.
  newestStarted(test) {
    const found = [...this.calls.entries()].filter(([, e]) => e.startedHere && test(e));
    return found.length ? found[found.length - 1][0] : null;
  }

  engagementCreated({ externalCallId, engagementId }) {
    const target = externalCallId || this.newestStarted((e) => !e.engagementId);
    if (!target || !engagementId) return null;
    const entry = this.entry(target);
    entry.engagementId = engagementId;
    for (const resolve of this.waiters.get(target) || []) resolve(engagementId);
    this.waiters.delete(target);
    return target;
  }

  // HubSpot's onCreateEngagementFailed: nothing will come for that call, so
  // its waiters go on without an engagement id now.
  engagementFailed({ externalCallId }) {
    const target = externalCallId || this.newestStarted((e) => !e.engagementId && !e.engagementFailed);
    if (!target) return null;
    const entry = this.entry(target);
    if (entry.engagementId) return target;
    entry.engagementFailed = true;
    for (const resolve of this.waiters.get(target) || []) resolve(null);
    this.waiters.delete(target);
    return target;
  }

  // HubSpot's caller-id match (see callerid.js) for the call it names, else
  // the newest inbound call this page started that has none yet.
  callerMatched(externalCallId, caller) {
    const target =
      externalCallId ||
      this.newestStarted((e) => !e.caller && e.snapshot && e.snapshot.direction === "inbound");
    if (!target || !this.calls.has(target)) return null;
    this.calls.get(target).caller = caller;
    return target;
  }

  waitForEngagement(externalCallId, timeoutMs) {
    const entry = this.entry(externalCallId);
    if (entry.engagementId || !entry.startedHere || entry.engagementFailed) {
      return Promise.resolve(entry.engagementId);
    }
    return new Promise((resolve) => {
      const list = this.waiters.get(externalCallId) || [];
      list.push(resolve);
      this.waiters.set(externalCallId, list);
      setTimeout(() => resolve(entry.engagementId), timeoutMs);
    });
  }

  // Takes in what an event says about its call (shown whoever sends it).
  learn(event) {
    if (!event || typeof event !== "object" || !event.externalCallId || !event.call) return;
    if (this.isFinished(event.externalCallId)) return;
    const entry = this.entry(event.externalCallId);
    entry.snapshot = { ...event.call, timerFrom: timerStart(event.call, entry.snapshot) };
  }

  isFinished(externalCallId) {
    return this.done.has(externalCallId);
  }

  // The SDK method and its argument for one gateway event, or an error
  // string. Fills in the engagement id HubSpot gave this page when the
  // gateway's event was made before the page reported it.
  async sdkCall(event, waitMs = ENGAGEMENT_WAIT_MS) {
    if (!event || typeof event !== "object") return { error: "an event from the gateway is not JSON" };
    const { type, externalCallId, payload } = event;
    if (!SDK_METHODS.has(type)) return { error: `unknown event type ${JSON.stringify(type)}` };
    if (!externalCallId || !payload || payload.externalCallId !== externalCallId) {
      return { error: `event ${type} does not name its call` };
    }
    this.learn(event);
    const entry = this.entry(externalCallId);
    const args = { ...payload };
    if ((type === "callEnded" || type === "callCompleted") && !args.engagementId) {
      const engagementId = await this.waitForEngagement(externalCallId, waitMs);
      if (engagementId) args.engagementId = engagementId;
    }
    if (args.engagementId && !entry.engagementId) entry.engagementId = args.engagementId;
    return { method: type, args };
  }

  // This page passed the event on; a start it passed on makes HubSpot
  // create the engagement (unless told not to) and match the caller.
  passedOn(event) {
    if (event.type === "callCompleted") return;
    const entry = this.entry(event.externalCallId);
    if (isStart(event.type)) entry.startedHere = event.payload.createEngagement !== false;
  }

  engagementFailedFor(externalCallId) {
    const entry = this.calls.get(externalCallId);
    return Boolean(entry && entry.engagementFailed);
  }

  // "the inbound call from Carol Caller" for notices; the id when nothing else is known.
  label(externalCallId) {
    const entry = this.calls.get(externalCallId);
    const snapshot =
      (entry && entry.snapshot) ||
      this.recent.find((c) => c.externalCallId === externalCallId) ||
      this.owed.get(externalCallId);
    const about = describeCall(snapshot, entry && entry.caller);
    if (!about) return `call ${externalCallId}`;
    return t("callLabel", {
      direction: about.direction.toLowerCase(),
      preposition: about.inbound ? t("from") : t("to"),
      number: about.name || about.number,
    });
  }

  // The call was completed in HubSpot (or is for the gateway to log): it
  // leaves the open calls for the last ones.
  finish(externalCallId) {
    const entry = this.calls.get(externalCallId);
    if (entry && entry.snapshot) {
      const done = { ...entry.snapshot, caller: entry.caller };
      this.recent = [done, ...this.recent.filter((c) => c.externalCallId !== externalCallId)];
      this.recent.length = Math.min(this.recent.length, RECENT_LIMIT);
    }
    this.calls.delete(externalCallId);
    this.done.add(externalCallId);
    if (this.done.size > 1000) this.done.delete(this.done.values().next().value);
    if (!this.calls.size && entry) this.show(externalCallId);
  }

  show(externalCallId) {
    if (this.lastShown === externalCallId) return;
    this.lastShown = externalCallId;
    this.onShownChanged();
  }

  // The wrap-up of a completed call is owed to HubSpot: its card stays.
  owe(externalCallId, call) {
    const known = call || this.recent.find((c) => c.externalCallId === externalCallId);
    if (!known || this.calls.has(externalCallId)) return;
    this.owed.set(externalCallId, known);
    this.late.add(externalCallId);
    this.done.add(externalCallId);
  }

  // Saved or discarded: nothing is offered for it any more.
  settle(externalCallId) {
    this.owed.delete(externalCallId);
    this.late.delete(externalCallId);
  }

  // Every open call, the current one first: the calls being talked on,
  // then those ringing (call waiting), then ended calls waiting for their
  // wrap-up, newest first within each; then the wrap-ups owed.
  get open() {
    const rank = { answered: 0, ringing: 1, ended: 2 };
    const shown = [];
    for (const [id, entry] of this.calls) {
      if (!entry.snapshot) continue;
      // held: its completion waits for the wrap-up, here or on the leader.
      const held = entry.held || entry.elsewhere || null;
      shown.push({ ...entry.snapshot, externalCallId: id, caller: entry.caller, held, order: entry.order });
    }
    const open = shown.sort((a, b) => (rank[a.state] ?? 1) - (rank[b.state] ?? 1) || b.order - a.order);
    const owed = [...this.owed].map(([id, call]) => ({ ...call, externalCallId: id, late: true, owed: true }));
    if (open.length || !this.lastShown || this.owed.has(this.lastShown)) return [...open, ...owed];
    const last = this.recent
      .filter((c) => c.externalCallId === this.lastShown)
      .map((c) => ({ ...c, late: this.late.has(c.externalCallId) }));
    return [...last, ...owed];
  }

  // Finished calls other than those on show.
  get history() {
    return this.recent.filter((c) => c.externalCallId !== this.lastShown && !this.owed.has(c.externalCallId));
  }
}

export function isStart(type) {
  return type === "incomingCall" || type === "outgoingCall";
}

// Where the call's timer counts from: the gateway's time of the answer (or
// of the first ring), unless that is implausible for a live call (clocks
// apart, a source that replays old timestamps); then from when the page
// learnt of the state.
const PLAUSIBLE_MS = 6 * 3600 * 1000;
export function timerStart(call, previous, now = Date.now()) {
  const stamp = call.answeredAt || call.startedAt;
  if (stamp && stamp <= now + 5_000 && now - stamp < PLAUSIBLE_MS) return Math.min(stamp, now);
  const sameState = previous && previous.state === call.state && previous.answeredAt === call.answeredAt;
  return sameState ? previous.timerFrom : now;
}

// What a call reads as, in the page's language: statuses as words, the
// number grouped for reading, HubSpot's match before the PBX's name.
export function describeCall(call, caller = call && call.caller) {
  if (!call) return null;
  const inbound = call.direction === "inbound";
  const raw = (inbound ? call.fromNumber : call.toNumber) || "";
  const matched = caller && caller.kind !== "none" && caller.name;
  return {
    inbound,
    number: raw ? readableNumber(raw) : t("unknownNumber"),
    name: matched ? caller.name : call.remoteName || "",
    kind: matched ? t(caller.kind) : caller && caller.kind === "none" ? t("noMatch") : "",
    direction: inbound ? t("inbound") : t("outbound"),
    state: { ringing: t("ringing"), answered: t("inCall"), ended: t("ended") }[call.state] || call.state,
    endStatus: call.endStatus ? t(`status_${call.endStatus}`) : "",
  };
}
