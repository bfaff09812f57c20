// The page's DOM: renders state and reports what the user does. Text only
// goes in through textContent, never as HTML; every word comes from i18n.js.

import { describeCall } from "./calls.js";
import { formatDuration, readableNumber, timeOfDay } from "./format.js";
import { language, t, translate } from "./i18n.js";

const CONNECTION_TEXT = {
  idle: "",
  connecting: "connecting",
  open: "live",
  reconnecting: "reconnecting",
  closed: "offline",
};

export class View {
  constructor(doc) {
    this.doc = doc;
    this.$ = (id) => doc.getElementById(id);
    this.onLogin = () => {};
    this.onLogout = () => {};
    this.onAvailability = () => {};
    this.onAutoOpen = () => {};
    this.onOpenRecord = () => {};
    this.onWrapUp = () => {};
    this.onDiscard = () => {};
    this.onChange = () => {};
    this.timer = null;
    this.calls = [];
    this.dispositions = [];
    this.drafts = new Map(); // externalCallId -> {notes, outcome} typed so far
    // Where drafts outlive a reload (the page sets it; storage.js decides).
    this.draftStore = { load: () => null, save: () => {} };
  }

  start() {
    translate(this.doc);
    this.$("login").addEventListener("submit", (event) => {
      event.preventDefault();
      const login = this.$("login-name").value.trim();
      const password = this.$("login-password").value;
      if (!login || !password) {
        this.loginFailed(t("enterLogin"));
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
    this.$("auto-open").addEventListener("change", (event) => this.onAutoOpen(event.target.checked));
  }

  showLogin(hubspot) {
    this.$("waiting").hidden = true;
    this.$("desk").hidden = true;
    this.$("login").hidden = false;
    this.$("login-submit").disabled = false;
    this.$("login-password").value = "";
    const where = hubspot && hubspot.portalId ? t("hubspotPortal", { portal: hubspot.portalId }) : t("hubspot");
    this.$("login-context").textContent = t("signInContext", { where });
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
    if (hubspot.portalId) parts.push(t("hubspotPortal", { portal: hubspot.portalId }));
    if (hubspot.userId) parts.push(t("contextUser", { user: hubspot.userId }));
    if (hubspot.iframeLocation) parts.push(t("contextWhere", { where: hubspot.iframeLocation }));
    if (hubspot.usesCallingWindow) parts.push(t("contextWindow"));
    this.$("hubspot-context").textContent = parts.join(" · ");
  }

  notEmbedded() {
    this.$("waiting-text").textContent = t("notConnected");
    this.$("not-embedded").hidden = false;
  }

  showDesk(user) {
    this.$("waiting").hidden = true;
    this.$("login").hidden = true;
    this.$("desk").hidden = false;
    this.$("user-name").textContent = user.displayName || user.login;
    const numbers = user.numbers && user.numbers.length ? user.numbers.map(readableNumber).join(", ") : "";
    this.$("user-numbers").textContent = numbers ? `(${numbers})` : "";
    this.showCalls([], []);
  }

  setAvailable(available) {
    this.$("available").checked = available;
    this.$("available-label").textContent = available ? t("available") : t("unavailable");
  }

  setAutoOpen(on) {
    this.$("auto-open").checked = on;
  }

  setDispositions(list) {
    this.dispositions = list;
  }

  setConnection(status) {
    const el = this.$("connection");
    el.dataset.state = status;
    const key = CONNECTION_TEXT[status];
    el.textContent = key === undefined ? status : key ? t(key) : "";
  }

  setVisibility({ isMinimized, isHidden }) {
    // Hidden or minimised: no need to repaint the timers every second.
    this.hidden = Boolean(isMinimized || isHidden);
    if (this.hidden) this.stopTimer();
    else this.paintTimers();
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
    dismiss.setAttribute("aria-label", t("dismiss"));
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
    this.$("dial-number").textContent = number ? readableNumber(number) : t("noNumber");
    this.$("dial-message").textContent = message;
    this.onChange();
  }

  // open: every open call, current first (CallBook.open); recent: the
  // last completed ones. `leads`: whether this surface logs the calls
  // (only it offers the wrap-up and the record button).
  showCalls(open, recent, { leads = true } = {}) {
    this.calls = open;
    const list = this.$("call-list");
    const keep = new Map([...list.children].map((li) => [li.dataset.callId, li]));
    const items = open.map((call) => {
      const li = keep.get(call.externalCallId) || this.newCard(call.externalCallId);
      this.fillCard(li, call, leads);
      return li;
    });
    placeInOrder(list, items);
    this.$("calls-idle").hidden = open.length > 0;
    // What was typed for a call that is no longer open is of no more use.
    for (const id of this.drafts.keys()) {
      if (open.some((c) => c.externalCallId === id)) continue;
      this.drafts.delete(id);
      this.draftStore.save(id, null);
    }
    this.paintTimers();
    this.showRecent(recent);
    this.onChange();
  }

  newCard(externalCallId) {
    const fragment = this.$("call-card").content.cloneNode(true);
    translate(fragment);
    const li = fragment.querySelector("li");
    li.dataset.callId = externalCallId;
    li.querySelector(".open-record").addEventListener("click", () => this.onOpenRecord(externalCallId));
    const form = li.querySelector(".wrap-up");
    const notes = li.querySelector(".wrap-notes");
    const outcome = li.querySelector(".wrap-outcome");
    const remember = () => {
      const draft = { notes: notes.value, outcome: outcome.value };
      this.drafts.set(externalCallId, draft);
      this.draftStore.save(externalCallId, draft);
    };
    notes.addEventListener("input", remember);
    outcome.addEventListener("change", remember);
    li.querySelector(".wrap-discard").addEventListener("click", () => this.onDiscard(externalCallId));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      li.querySelector(".wrap-save").disabled = true;
      this.onWrapUp(externalCallId, { notes: notes.value.trim(), outcome: outcome.value });
    });
    return li;
  }

  fillCard(li, call, leads) {
    const about = describeCall(call);
    li.dataset.state = call.state;
    li.querySelector(".call-name").textContent = about.name || about.number;
    li.querySelector(".call-kind").textContent = about.kind;
    li.querySelector(".call-direction").textContent = about.direction;
    // Without a name the number is the headline; it is not shown twice.
    li.querySelector(".call-number").textContent = about.name ? about.number : "";
    li.querySelector(".call-number-part").hidden = !about.name;
    const state = call.state === "ended" && about.endStatus ? `${about.state} (${about.endStatus})` : about.state;
    li.querySelector(".call-state").textContent = call.held ? `${state} · ${t("wrapUp")}` : state;
    const canOpen = leads && call.caller && call.caller.coordinates;
    li.querySelector(".open-record").hidden = !canOpen;
    const note = li.querySelector(".call-note");
    note.hidden = !(call.loggedBy === "gateway" || !leads);
    note.textContent = call.loggedBy === "gateway" ? t("loggedByGateway") : leads ? "" : t("watchedElsewhere");
    const form = li.querySelector(".wrap-up");
    const wasHidden = form.hidden;
    // Any surface takes the wrap-up; a follower hands it to the leader.
    // A call completed by the deadline still takes its wrap-up, as an update.
    form.hidden = !(call.held || call.late);
    if (!form.hidden && wasHidden) this.fillWrapUp(li, call.externalCallId);
    if (call.late && !call.held) {
      li.querySelector(".wrap-deadline").textContent = t("wrapUpLate");
      li.querySelector(".wrap-save").textContent = t("saveLate");
    }
    // Owed to HubSpot: offered until saved, unless the user lets it go.
    li.querySelector(".wrap-discard").hidden = !call.owed;
  }

  // A save that failed may be tried again.
  enableWrapUp(externalCallId) {
    const li = [...this.$("call-list").children].find((c) => c.dataset.callId === externalCallId);
    if (li) li.querySelector(".wrap-save").disabled = false;
  }

  fillWrapUp(li, externalCallId) {
    const select = li.querySelector(".wrap-outcome");
    const none = this.doc.createElement("option");
    none.value = "";
    none.textContent = t("noOutcome");
    const options = this.dispositions.map(({ id, label }) => {
      const option = this.doc.createElement("option");
      option.value = id;
      option.textContent = label;
      return option;
    });
    select.replaceChildren(none, ...options);
    const draft = this.drafts.get(externalCallId) || this.draftStore.load(externalCallId);
    if (draft) {
      this.drafts.set(externalCallId, draft);
      select.value = draft.outcome;
      li.querySelector(".wrap-notes").value = draft.notes;
    }
    li.querySelector(".wrap-save").disabled = false;
  }

  showRecent(recent) {
    const list = this.$("recent-list");
    list.replaceChildren(
      ...recent.map((call) => {
        const item = this.doc.createElement("li");
        const about = describeCall(call);
        const who = this.doc.createElement("span");
        who.className = "number";
        who.textContent = `${about.inbound ? "↙" : "↗"} ${about.name || about.number}`;
        who.title = about.number;
        const what = this.doc.createElement("span");
        what.className = "muted";
        const took = call.answeredAt && call.endedAt ? ` · ${formatDuration(call.endedAt - call.answeredAt)}` : "";
        const when = timeOfDay(call.startedAt, language);
        what.textContent = [when, `${about.endStatus}${took}`].filter(Boolean).join(" · ");
        item.append(who, what);
        return item;
      }),
    );
    this.$("recent-empty").hidden = recent.length > 0;
  }

  // Ringing time before the answer, talk time after it, each labelled;
  // an ended call shows how long it talked. Wrap-up deadlines count down.
  paintTimers() {
    const paint = () => {
      const now = Date.now();
      for (const li of this.$("call-list").children) {
        const call = this.calls.find((c) => c.externalCallId === li.dataset.callId);
        if (!call) continue;
        const label = li.querySelector(".timer-label");
        const value = li.querySelector(".timer-value");
        const timer = li.querySelector(".timer");
        timer.dataset.kind = call.state;
        if (call.state === "ringing") {
          label.textContent = t("ringFor");
          value.textContent = formatDuration(now - call.timerFrom);
        } else if (call.state === "answered") {
          label.textContent = t("talkFor");
          value.textContent = formatDuration(now - call.timerFrom);
        } else {
          const talked = call.answeredAt && call.endedAt ? call.endedAt - call.answeredAt : null;
          label.textContent = talked === null ? "" : t("talked");
          value.textContent = talked === null ? "" : formatDuration(talked);
        }
        const deadline = li.querySelector(".wrap-deadline");
        if (call.held && call.held.deadline) {
          const seconds = Math.max(0, Math.ceil((call.held.deadline - now) / 1000));
          deadline.textContent = t("wrapUpEndsIn", { seconds });
        }
      }
    };
    paint();
    const ticking = this.calls.some((c) => c.state !== "ended" || c.held);
    if (!ticking || this.hidden) this.stopTimer();
    else if (!this.timer) this.timer = setInterval(paint, 1000);
  }

  stopTimer() {
    clearInterval(this.timer);
    this.timer = null;
  }
}

// Puts `items` as the list's children in that order, moving only the cards
// out of place: a card taken out of the document loses the focus, and the
// wrap-up notes someone is typing would stop taking their keys whenever
// any call changed.
function placeInOrder(list, items) {
  items.forEach((item, index) => {
    const there = list.children[index] || null;
    if (there !== item) list.insertBefore(item, there);
  });
  while (list.children.length > items.length) list.lastElementChild.remove();
}
