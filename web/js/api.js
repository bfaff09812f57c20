// The gateway's HTTP API as the iframe page uses it, and the session it keeps.
//
// The session token is a bearer token, kept in sessionStorage where the
// browser grants it. A cross-site iframe is often refused every storage, so
// the gateway also keeps the session in a partitioned cookie that only
// /api/session/* receives; a page that opens trades it for a token
// (docs/page.md#where-the-page-keeps-what).

import { storage } from "./storage.js";

const SESSION_KEY = "gateway.session";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function url(path) {
  // Relative to the page, so the gateway may live under a path prefix.
  return new URL(path, document.baseURI).toString();
}

// The browser refuses a keepalive request once the bodies of those still in
// flight would pass 64 KiB (the Fetch standard's limit, Chromium's too).
const KEEPALIVE_BYTES = 64 * 1024;
let keepaliveBytes = 0; // in flight now

// outlive: the page is going away and the request must still reach the
// gateway. keepalive carries the bearer token (sendBeacon sends no headers,
// and the session cookie reaches only /api/session/*); a body over what
// keepalive takes goes as a plain request, which the unload may cancel.
async function call(method, path, { token, body, outlive = false } = {}) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token) headers.authorization = `Bearer ${token}`;
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const size = outlive && payload ? new Blob([payload]).size : 0;
  const keepalive = outlive && keepaliveBytes + size <= KEEPALIVE_BYTES;
  if (keepalive) keepaliveBytes += size;
  let response;
  try {
    response = await fetch(url(path), {
      method,
      headers,
      body: payload,
      // Same origin only: the session cookie goes to /api/session/* (its path).
      credentials: "same-origin",
      cache: "no-store",
      keepalive,
    });
  } catch (err) {
    throw new ApiError(0, `the gateway cannot be reached (${err.message})`);
  } finally {
    if (keepalive) keepaliveBytes -= size;
  }
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = {};
  }
  if (!response.ok) {
    throw new ApiError(response.status, data.error || `the gateway answered ${response.status}`);
  }
  return data;
}

export class Session {
  constructor({ onExpired }) {
    this.onExpired = onExpired;
    this.state = null;
    this.timer = null;
  }

  get token() {
    return this.state ? this.state.token : null;
  }

  get user() {
    return this.state ? this.state.user : null;
  }

  // The session kept in storage, else the one the cookie holds; either only
  // for the HubSpot portal and user that HubSpot reports now.
  async restore(portalId, hubspotUserId) {
    if (this.restoreStored(portalId, hubspotUserId)) return true;
    const body = {};
    if (portalId !== undefined && portalId !== null) body.portalId = portalId;
    if (hubspotUserId !== undefined && hubspotUserId !== null) body.hubspotUserId = hubspotUserId;
    try {
      this.keep(await call("POST", "api/session/resume", { body }), portalId, hubspotUserId);
    } catch {
      return false; // no cookie, an expired one, another user's: sign in
    }
    return true;
  }

  restoreStored(portalId, hubspotUserId) {
    let stored = null;
    try {
      stored = JSON.parse(storage.getItem(SESSION_KEY) || "null");
    } catch {
      stored = null;
    }
    if (!stored || stored.expiresAt - Date.now() < 30_000) return false;
    if (String(stored.portalId ?? "") !== String(portalId ?? "")) return false;
    if (String(stored.hubspotUserId ?? "") !== String(hubspotUserId ?? "")) return false;
    this.state = stored;
    this.scheduleRefresh();
    return true;
  }

  async login(login, password, portalId, hubspotUserId) {
    const body = { login, password };
    if (portalId !== undefined && portalId !== null) body.portalId = portalId;
    if (hubspotUserId !== undefined && hubspotUserId !== null) body.hubspotUserId = hubspotUserId;
    const data = await call("POST", "api/login", { body });
    this.keep(data, portalId, hubspotUserId);
  }

  keep(data, portalId, hubspotUserId) {
    this.state = {
      token: data.token,
      expiresAt: Date.now() + data.expiresIn * 1000,
      user: data.user,
      portalId: portalId ?? null,
      hubspotUserId: hubspotUserId ?? null,
    };
    storage.setItem(SESSION_KEY, JSON.stringify(this.state));
    this.scheduleRefresh();
  }

  scheduleRefresh() {
    clearTimeout(this.timer);
    // Refresh at four fifths of the lifetime: early enough to survive a slow
    // network, late enough not to churn.
    const lifetime = this.state.expiresAt - Date.now();
    const delay = Math.max(5_000, lifetime * 0.8);
    this.timer = setTimeout(() => this.refresh(), Math.min(delay, 2 ** 31 - 1));
  }

  async refresh() {
    if (!this.state) return;
    try {
      const data = await call("POST", "api/session/refresh", { token: this.state.token });
      this.keep(data, this.state.portalId, this.state.hubspotUserId);
    } catch (err) {
      if (err.status === 401) {
        this.clear();
        this.onExpired(err);
      } else {
        // A blip: try again soon, the token is still valid for a while.
        this.timer = setTimeout(() => this.refresh(), 10_000);
      }
    }
  }

  clear() {
    clearTimeout(this.timer);
    this.state = null;
    storage.removeItem(SESSION_KEY);
    // The cookie goes too; if this fails, its token still expires.
    call("POST", "api/session/logout").catch(() => {});
  }

  authed(method, path, body, { outlive = false } = {}) {
    if (!this.state) return Promise.reject(new ApiError(401, "not logged in"));
    return call(method, path, { token: this.state.token, body, outlive });
  }

  streamTicket() {
    return this.authed("POST", "api/stream-ticket");
  }

  // Just before an event goes to HubSpot: true for the first page to ask.
  async claim(eventId) {
    return (await this.authed("POST", "api/stream/claim", { eventId })).deliver === true;
  }

  acknowledge(lastEventId) {
    return this.authed("POST", "api/stream/ack", { lastEventId });
  }

  async acknowledged() {
    return (await this.authed("GET", "api/stream/ack")).lastEventId || null;
  }

  callState(externalCallId) {
    return this.authed("GET", `api/calls/${encodeURIComponent(externalCallId)}`);
  }

  reportEngagement(externalCallId, engagementId) {
    return this.authed("POST", `api/calls/${encodeURIComponent(externalCallId)}/engagement`, {
      engagementId,
    });
  }

  // The wrap-up's timeout and the portal's call outcomes.
  wrapUpSettings() {
    return this.authed("GET", "api/wrap-up");
  }

  // A wrap-up saved after the call was completed: the gateway updates the engagement.
  saveWrapUp(externalCallId, { notes = "", outcome = "" }) {
    return this.authed("POST", `api/calls/${encodeURIComponent(externalCallId)}/wrap-up`, { notes, outcome });
  }

  // What the gateway keeps of each call's wrap-up for the pages: typed
  // notes and outcome, and whether HubSpot still has to get them (owed).
  async keptWrapUps() {
    return (await this.authed("GET", "api/wrap-up/kept")).wrapUps || [];
  }

  // owed left out: the gateway keeps the mark it holds. outlive: sent as
  // the page goes away.
  keepWrapUp(externalCallId, kept, { outlive = false } = {}) {
    return this.authed("PUT", `api/calls/${encodeURIComponent(externalCallId)}/wrap-up/kept`, kept, { outlive });
  }

  discardWrapUp(externalCallId) {
    return this.authed("DELETE", `api/calls/${encodeURIComponent(externalCallId)}/wrap-up/kept`);
  }

  dial(number, idempotencyKey) {
    return this.authed("POST", "api/dial", { number, idempotencyKey });
  }

  demoCall(direction) {
    return this.authed("POST", `api/dev/demo-call?direction=${encodeURIComponent(direction)}`);
  }
}

export function streamUrl(ticket, lastEventId) {
  const target = new URL("api/stream", document.baseURI);
  target.searchParams.set("ticket", ticket);
  if (lastEventId) target.searchParams.set("lastEventId", lastEventId);
  return target.toString();
}
