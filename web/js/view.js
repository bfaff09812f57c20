// The page's DOM: renders state and reports what the user does. Text only
// goes in through textContent, never as HTML.

import { describeCall, formatDuration } from "./calls.js";

const CONNECTION_TEXT = {
  idle: "",
  connecting: "Connecting…",
  open: "Live",
  reconnecting: "Reconnecting…",
  closed: "Offline",
};

export class View {
  constructor(doc) {
    this.doc = doc;
    this.$ = (id) => doc.getElementById(id);
    this.onLogin = () => {};
    this.onLogout = () => {};
    this.onAvailability = () => {};
    this.onChange = () => {};
    this.timer = null;
    this.call = null;
  }

  start() {
    this.$("login").addEventListener("submit", (event) => {
      event.preventDefault();
      const login = this.$("login-name").value.trim();
      const password = this.$("login-password").value;
      if (!login || !password) {
        this.loginFailed("Enter your login and password.");
        return;
      }
      this.$("login-submit").disabled = true;
      this.onLogin(login, password);
    });
    this.$("logout").addEventListener("click", () => this.onLogout());
    this.$("available").addEventListener("change", (event) => {
      this.setAvailable(event.target.checked);
      this.onAvailability(event.target.checked);
    });
  }

  showLogin(hubspot) {
    this.$("waiting").hidden = true;
    this.$("desk").hidden = true;
    this.$("login").hidden = false;
    this.$("login-submit").disabled = false;
    this.$("login-password").value = "";
    const where = hubspot && hubspot.portalId ? `HubSpot portal ${hubspot.portalId}` : "HubSpot";
    this.$("login-context").textContent = `Sign in with your call gateway account to take calls in ${where}.`;
    this.setConnection("idle");
    this.stopTimer();
    this.$("login-name").focus();
  }

  loginFailed(message) {
    this.$("login-submit").disabled = false;
    this.showError(message);
    this.$("login-password").focus();
  }

  showHubSpot(hubspot) {
    const parts = [];
    if (hubspot.portalId) parts.push(`HubSpot portal ${hubspot.portalId}`);
    if (hubspot.userId) parts.push(`user ${hubspot.userId}`);
    if (hubspot.iframeLocation) parts.push(`in the ${hubspot.iframeLocation}`);
    if (hubspot.usesCallingWindow) parts.push("calling window");
    this.$("hubspot-context").textContent = parts.join(" · ");
  }

  notEmbedded() {
    this.$("waiting-text").textContent = "HubSpot has not connected.";
    this.$("not-embedded").hidden = false;
  }

  showDesk(user) {
    this.$("waiting").hidden = true;
    this.$("login").hidden = true;
    this.$("desk").hidden = false;
    this.$("user-name").textContent = user.displayName || user.login;
    this.$("user-numbers").textContent = user.numbers && user.numbers.length ? `(${user.numbers.join(", ")})` : "";
    this.showCalls(null, []);
  }

  setAvailable(available) {
    this.$("available").checked = available;
    this.$("available-label").textContent = available ? "Available for calls" : "Unavailable";
  }

  setConnection(status) {
    const el = this.$("connection");
    el.dataset.state = status;
    el.textContent = CONNECTION_TEXT[status] ?? status;
  }

  setVisibility({ isMinimized, isHidden }) {
    // Hidden or minimised: no need to repaint the timer every second.
    this.hidden = Boolean(isMinimized || isHidden);
    if (this.hidden) this.stopTimer();
    else this.renderTimer();
  }

  showError(message) {
    const el = this.$("error");
    el.textContent = message;
    el.hidden = false;
    this.onChange();
  }

  clearError() {
    this.$("error").hidden = true;
    this.$("error").textContent = "";
  }

  // One notice per key (a call's id): a newer one about the same call
  // replaces it. Each can be dismissed.
  showNotice(message, key = "") {
    const list = this.$("notices");
    const old = key ? [...list.children].find((item) => item.dataset.key === key) : null;
    const item = this.doc.createElement("li");
    item.className = "notice";
    item.dataset.key = key;
    const text = this.doc.createElement("span");
    text.textContent = message;
    const dismiss = this.doc.createElement("button");
    dismiss.type = "button";
    dismiss.className = "dismiss";
    dismiss.textContent = "×";
    dismiss.setAttribute("aria-label", "Dismiss notice");
    dismiss.addEventListener("click", () => {
      item.remove();
      this.onChange();
    });
    item.append(text, dismiss);
    if (old) old.replaceWith(item);
    else list.append(item);
    this.onChange();
  }

  showDial(number, message) {
    this.$("dial").hidden = false;
    this.$("dial-number").textContent = number || "(no number)";
    this.$("dial-message").textContent = message;
    this.onChange();
  }

  showCalls(current, recent) {
    this.call = current;
    const info = describeCall(current);
    this.$("call-idle").hidden = Boolean(info);
    this.$("call-details").hidden = !info;
    this.$("call").dataset.state = current ? current.state : "idle";
    if (info) {
      this.$("call-number").textContent = info.number;
      this.$("call-name").textContent = info.name || "—";
      this.$("call-direction").textContent = info.direction;
      this.$("call-state").textContent = info.state;
    }
    this.renderTimer();
    const list = this.$("recent-list");
    list.replaceChildren(
      ...recent.map((call) => {
        const item = this.doc.createElement("li");
        const about = describeCall(call);
        const who = this.doc.createElement("span");
        who.textContent = `${about.direction === "Inbound" ? "↙" : "↗"} ${about.name || about.number}`;
        who.title = about.number;
        const what = this.doc.createElement("span");
        what.className = "muted";
        const took = call.answeredAt && call.endedAt ? ` · ${formatDuration(call.endedAt - call.answeredAt)}` : "";
        what.textContent = `${(call.endStatus || "").toLowerCase().replace("_", " ")}${took}`;
        item.append(who, what);
        return item;
      }),
    );
    this.$("recent-empty").hidden = recent.length > 0;
    this.onChange();
  }

  renderTimer() {
    const call = this.call;
    const el = this.$("call-timer");
    if (!call || call.state === "ended") {
      this.stopTimer();
      // An ended call shows its talk time, still.
      const talked = call && call.answeredAt && call.endedAt ? call.endedAt - call.answeredAt : null;
      el.hidden = talked === null;
      if (talked !== null) el.textContent = formatDuration(talked);
      return;
    }
    el.hidden = false;
    // Talk time once answered, ringing time before.
    const paint = () => {
      if (this.call) el.textContent = formatDuration(Date.now() - this.call.timerFrom);
    };
    paint();
    if (!this.timer && !this.hidden) this.timer = setInterval(paint, 1000);
  }

  stopTimer() {
    clearInterval(this.timer);
    this.timer = null;
  }
}
