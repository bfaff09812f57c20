// The gateway's event stream, kept open across blips and instance restarts.
//
// EventSource cannot send an Authorization header, so each connection uses a
// one-minute ticket in its URL. Its built-in reconnect would reuse an expired
// ticket, so on any error this closes the source and opens a new one with a
// fresh ticket, passing where it may resume; the gateway replays from
// there. What was passed on to HubSpot is the gateway's to keep (the page
// may have no storage at all): a page claims each event just before its SDK
// call, and reports the position it has handled everything up to, where
// the next page that opens resumes (docs/page.md#where-the-page-keeps-what).
import { streamUrl } from "./api.js";

const SEEN_LIMIT = 1000;

// Event ids are "<ms>-<seq>"; negative when a comes before b.
export function compareIds(a, b) {
  const [am, as] = String(a).split("-").map(Number);
  const [bm, bs] = String(b).split("-").map(Number);
  return am - bm || as - bs;
}

// Two kinds of id: handled (passed on, or found passed on by another page)
// and pending (received, waiting for its turn). Events of different calls
// are handled out of stream order, so the place to resume from is the
// newest id before which everything received has been handled; onAdvance
// tells the page each time that place moves.
export class SeenIds {
  constructor(onAdvance = () => {}) {
    this.onAdvance = onAdvance;
    this.last = null;
    this.ids = new Set();
    this.pending = []; // received, not yet handled, in stream order
  }

  has(id) {
    return this.ids.has(id) || this.pending.includes(id);
  }

  received(id) {
    this.pending.push(id);
  }

  add(id) {
    const wasPending = this.pending.includes(id);
    if (this.ids.has(id) && !wasPending) return;
    this.ids.add(id);
    if (this.ids.size > SEEN_LIMIT) {
      const oldest = this.ids.values().next().value;
      this.ids.delete(oldest);
    }
    const before = this.last;
    if (!wasPending && !this.pending.length) this.last = id;
    while (this.pending.length && this.ids.has(this.pending[0])) this.last = this.pending.shift();
    if (this.last !== before) this.onAdvance(this.last);
  }

  resumeFrom(id) {
    this.last = id;
    this.onAdvance(id);
  }

  forget() {
    this.last = null;
    this.ids.clear();
    this.pending = [];
  }
}

export class GatewayStream {
  // onEvent(id, data) is called once per new event, in order; onGap() when
  // the gateway no longer holds everything missed; onStatus(s) with
  // "connecting" | "open" | "reconnecting" | "closed".
  constructor({ session, seen, onEvent, onGap, onStatus, onAuthLost }) {
    Object.assign(this, { session, seen, onEvent, onGap, onStatus, onAuthLost });
    this.source = null;
    this.stopped = true;
    this.retryTimer = null;
    this.failures = 0;
  }

  start() {
    this.stopped = false;
    this.connect("connecting");
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    if (this.source) this.source.close();
    this.source = null;
    this.onStatus("closed");
  }

  async connect(status) {
    if (this.stopped) return;
    this.onStatus(status);
    let ticket;
    try {
      ticket = (await this.session.streamTicket()).ticket;
    } catch (err) {
      if (err.status === 401) {
        this.stopped = true;
        this.onAuthLost(err);
        return;
      }
      this.retry();
      return;
    }
    if (this.stopped) return;
    const source = new EventSource(streamUrl(ticket, this.seen.last));
    this.source = source;
    source.addEventListener("open", () => {
      this.failures = 0;
      this.onStatus("open");
    });
    source.addEventListener("sdk", (message) => this.handle(message));
    source.addEventListener("gap", () => this.onGap());
    // A fresh stream says where "now" is; resuming from there loses nothing
    // even if this connection drops before its first event.
    source.addEventListener("hello", (message) => {
      if (!this.seen.last && message.lastEventId) this.seen.resumeFrom(message.lastEventId);
    });
    source.addEventListener("error", () => {
      if (this.source !== source) return;
      source.close();
      this.source = null;
      this.retry();
    });
  }

  retry() {
    if (this.stopped) return;
    this.onStatus("reconnecting");
    // Quick first retry (a cut stream usually means another instance is
    // ready), then back off up to 15 s, with jitter so a restarted instance
    // is not hit by every browser at once.
    const base = Math.min(15_000, 250 * 2 ** this.failures);
    this.failures += 1;
    const delay = base / 2 + Math.random() * (base / 2);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect("reconnecting"), delay);
  }

  handle(message) {
    const id = message.lastEventId;
    if (!id || this.seen.has(id)) return;
    let data;
    try {
      data = JSON.parse(message.data);
    } catch {
      data = null; // reported by the page, which spends the id
    }
    // Handled (seen.add) only when its SDK call is made, by the page.
    this.seen.received(id);
    this.onEvent(id, data);
  }
}
