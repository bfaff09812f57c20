// What the page knows about calls: the SDK call each gateway event becomes,
// the engagement HubSpot created for each call, and what the UI shows.
// No DOM and no SDK here, so the rules stay in one readable place.

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

export class CallBook {
  constructor() {
    this.calls = new Map(); // externalCallId -> {snapshot, engagementId, startedHere, owner, …}
    this.waiters = new Map(); // externalCallId -> [resolve]
    this.recent = [];
    this.currentId = null;
    this.lastEnded = null;
  }

  entry(externalCallId) {
    let entry = this.calls.get(externalCallId);
    if (!entry) {
      // startedHere: this page passed on the call's start (HubSpot answers
      // it with the engagement); owner: it passes on the call's events.
      entry = { snapshot: null, engagementId: null, startedHere: false, owner: false, engagementFailed: false };
      this.calls.set(externalCallId, entry);
    }
    return entry;
  }

  // HubSpot's onCreateEngagementSucceeded may or may not name the call; an
  // unnamed one belongs to the newest started call that has no engagement.
  engagementCreated({ externalCallId, engagementId }) {
    let target = externalCallId;
    if (!target) {
      const waiting = [...this.calls.entries()].filter(([, e]) => e.startedHere && !e.engagementId);
      target = waiting.length ? waiting[waiting.length - 1][0] : null;
    }
    if (!target || !engagementId) return null;
    const entry = this.entry(target);
    entry.engagementId = engagementId;
    for (const resolve of this.waiters.get(target) || []) resolve(engagementId);
    this.waiters.delete(target);
    return target;
  }

  // HubSpot's onCreateEngagementFailed: nothing will come for that call (or,
  // unnamed, the newest started call still waiting), so its waiters go on
  // without an engagement id now.
  engagementFailed({ externalCallId }) {
    let target = externalCallId;
    if (!target) {
      const waiting = [...this.calls.entries()].filter(
        ([, e]) => e.startedHere && !e.engagementId && !e.engagementFailed,
      );
      target = waiting.length ? waiting[waiting.length - 1][0] : null;
    }
    if (!target) return null;
    const entry = this.entry(target);
    if (entry.engagementId) return target;
    entry.engagementFailed = true;
    for (const resolve of this.waiters.get(target) || []) resolve(null);
    this.waiters.delete(target);
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
    const entry = this.entry(externalCallId);
    if (event.call) entry.snapshot = { ...event.call, timerFrom: timerStart(event.call, entry.snapshot) };
    const args = { ...payload };
    // A page that opened mid-call learns of the call from a later event.
    if (isStart(type) || !this.calls.has(this.currentId)) this.currentId = externalCallId;
    if ((type === "callEnded" || type === "callCompleted") && !args.engagementId) {
      const engagementId = await this.waitForEngagement(externalCallId, waitMs);
      if (engagementId) args.engagementId = engagementId;
    }
    if (args.engagementId && !entry.engagementId) entry.engagementId = args.engagementId;
    if (type === "callCompleted") this.finish(externalCallId);
    return { method: type, args };
  }

  // This page passed the event on: it owns the call from here, and a start
  // it passed on makes HubSpot create the engagement (unless told not to).
  passedOn(event) {
    if (event.type === "callCompleted") return; // finished: nothing refers to it again
    const entry = this.entry(event.externalCallId);
    entry.owner = true;
    if (isStart(event.type)) entry.startedHere = event.payload.createEngagement !== false;
  }

  // Whether this page passes the call's events on without first giving the
  // page that owns it (another tab, or none after a reload) its turn.
  owns(externalCallId) {
    const entry = this.calls.get(externalCallId);
    return Boolean(entry && entry.owner);
  }

  engagementFailedFor(externalCallId) {
    const entry = this.calls.get(externalCallId);
    return Boolean(entry && entry.engagementFailed);
  }

  // "the call from +15555550199" for notices; the id when nothing else is known.
  label(externalCallId) {
    const entry = this.calls.get(externalCallId);
    const snapshot = (entry && entry.snapshot) || this.recent.find((c) => c.externalCallId === externalCallId);
    const about = describeCall(snapshot);
    if (!about) return `call ${externalCallId}`;
    return `the ${about.direction.toLowerCase()} call ${about.direction === "Inbound" ? "from" : "to"} ${about.number}`;
  }

  finish(externalCallId) {
    const entry = this.calls.get(externalCallId);
    if (entry && entry.snapshot) {
      this.recent = [entry.snapshot, ...this.recent.filter((c) => c.externalCallId !== externalCallId)];
      this.recent.length = Math.min(this.recent.length, RECENT_LIMIT);
    }
    // The finished call stays on show (as ended) until the next one starts.
    if (this.currentId === externalCallId) this.lastEnded = entry ? entry.snapshot : null;
    // Nothing will refer to the call again; keep the map small.
    this.calls.delete(externalCallId);
  }

  get current() {
    const entry = this.currentId ? this.calls.get(this.currentId) : null;
    if (entry) return entry.snapshot;
    return this.lastEnded && this.lastEnded.externalCallId === this.currentId ? this.lastEnded : null;
  }

  // Finished calls other than the one on show.
  get history() {
    const shown = this.current;
    return this.recent.filter((call) => !shown || call.externalCallId !== shown.externalCallId);
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

// "+15555550123" -> "+1 555 555 0123" is beyond a page this thin; E.164 is
// what HubSpot matches on, so it is shown as it is.
export function describeCall(call) {
  if (!call) return null;
  const inbound = call.direction === "inbound";
  const number = (inbound ? call.fromNumber : call.toNumber) || "unknown number";
  return {
    number,
    name: call.remoteName || "",
    direction: inbound ? "Inbound" : "Outbound",
    state: { ringing: "Ringing", answered: "In call", ended: "Ended" }[call.state] || call.state,
  };
}

export function formatDuration(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}
