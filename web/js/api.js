// The gateway's HTTP API as the iframe page uses it, and the session it keeps.
//
// The session token lives in sessionStorage (memory where the browser
// refuses storage to an embedded page): it survives a reload of the iframe
// but not the tab, is partitioned per top-level site by the browser, and is
// never a cookie (so no third-party cookie rules apply to it).

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

async function call(method, path, { token, body } = {}) {
  const headers = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token) headers.authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(url(path), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, `the gateway cannot be reached (${err.message})`);
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

  // A stored session is reused only if it is unexpired and was made for the
  // same HubSpot portal and user that HubSpot reports now.
  restore(portalId, hubspotUserId) {
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
  }

  authed(method, path, body) {
    if (!this.state) return Promise.reject(new ApiError(401, "not logged in"));
    return call(method, path, { token: this.state.token, body });
  }

  streamTicket() {
    return this.authed("POST", "api/stream-ticket");
  }

  reportEngagement(externalCallId, engagementId) {
    return this.authed("POST", `api/calls/${encodeURIComponent(externalCallId)}/engagement`, {
      engagementId,
    });
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
