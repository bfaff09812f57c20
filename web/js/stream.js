// The gateway's event stream, kept open across blips and instance restarts.
//
// EventSource cannot send an Authorization header, so each connection uses a
// one-minute ticket in its URL. Its built-in reconnect would reuse an expired
// ticket, so on any error this closes the source and opens a new one with a
// fresh ticket, passing the last event id it handled; the gateway resumes
// from there. Ids already handled are remembered (in sessionStorage, so a
// reload of the iframe does not replay a call to HubSpot) and skipped.

import { streamUrl } from "./api.js";
import { storage } from "./storage.js";

const SEEN_KEY = "gateway.seen";
const SEEN_LIMIT = 1000;

export class SeenIds {
  constructor(store = storage) {
    this.storage = store;
    let stored = { last: null, ids: [] };
    try {
      stored = JSON.parse(store.getItem(SEEN_KEY) || "null") || stored;
    } catch {
      // A damaged entry only costs the dedupe memory, never an event.
    }
    this.last = stored.last;
    this.ids = new Set(stored.ids);
  }

  has(id) {
    return this.ids.has(id);
  }

  add(id) {
    this.ids.add(id);
    this.last = id;
    if (this.ids.size > SEEN_LIMIT) {
      const oldest = this.ids.values().next().value;
      this.ids.delete(oldest);
    }
    this.storage.setItem(SEEN_KEY, JSON.stringify({ last: this.last, ids: [...this.ids] }));
  }

  resumeFrom(id) {
    this.last = id;
    this.storage.setItem(SEEN_KEY, JSON.stringify({ last: this.last, ids: [...this.ids] }));
  }

  forget() {
    this.last = null;
    this.ids.clear();
    this.storage.removeItem(SEEN_KEY);
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
      data = null; // reported by the page; the id is still spent
    }
    // Marked before it is handed on: a crash in between loses one SDK call
    // rather than sending it twice.
    this.seen.add(id);
    this.onEvent(id, data);
  }
}
