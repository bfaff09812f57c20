// Which of the user's surfaces (tabs, HubSpot's calling window, its remote)
// talks to the SDK for calls: exactly one, the leader; the others show the
// same calls and send nothing.
//
// A cross-site frame is refused Web Locks (Chromium throws SecurityError
// where it refuses the frame storage), but a BroadcastChannel still works
// between the frames of one top-level site. So the surfaces elect over
// one: each says it is alive every second; the oldest surface alive that
// may lead is the leader, which every surface works out by itself from the
// same facts. A surface that opens listens a moment before it decides, so it
// does not lead over an older one it has not heard yet; a surface that goes
// away says so, and one that stops saying it is alive is dropped after three
// silent beats. HubSpot's remote (iframeLocation "remote" while the calling
// window is in use) never leads: HubSpot's own demo sends nothing from it.
// Without BroadcastChannel every surface leads alone, and the gateway's
// claim still keeps each event to one of them.

const BEAT_MS = 1_000;
const SILENT_MS = 3 * BEAT_MS;
const LISTEN_MS = 400;

export class Surfaces {
  // onLead(leads) whenever this surface starts or stops leading;
  // onMessage(message) for what other surfaces share; onJoin() when
  // another surface opens.
  constructor({ onLead = () => {}, onMessage = () => {}, onJoin = () => {} } = {}) {
    this.onLead = onLead;
    this.onMessage = onMessage;
    this.onJoin = onJoin;
    this.me = { id: `${Date.now()}-${Math.random().toString(36).slice(2, 10)}`, since: Date.now() };
    this.others = new Map(); // id -> {since, mayLead, seen}
    this.channel = null;
    this.leads = false;
    this.decided = false;
    this.mayLead = true;
    this.timers = [];
  }

  // name: one election per gateway user. mayLead: false for the remote.
  start(name, { mayLead = true } = {}) {
    this.stop();
    this.mayLead = mayLead;
    this.me.since = Date.now();
    try {
      this.channel = new BroadcastChannel(`gateway.surfaces.${name}`);
    } catch {
      this.channel = null;
    }
    if (!this.channel) {
      this.decided = true;
      this.setLeads(mayLead);
      return;
    }
    this.channel.onmessage = (event) => this.heard(event.data || {});
    this.say({ type: "alive", hello: true });
    this.timers.push(setInterval(() => this.beat(), BEAT_MS));
    this.timers.push(
      setTimeout(() => {
        this.decided = true;
        this.elect();
        // Deciding to follow changes nothing, yet the page must hear it.
        if (!this.leads) this.onLead(false);
      }, LISTEN_MS),
    );
    this.bye = () => this.say({ type: "bye" });
    addEventListener("pagehide", this.bye);
  }

  stop() {
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    if (this.channel) {
      this.say({ type: "bye" });
      this.channel.close();
    }
    if (this.bye) removeEventListener("pagehide", this.bye);
    this.channel = null;
    this.others.clear();
    this.decided = false;
    this.setLeads(false);
  }

  // True once this surface knows whether it leads.
  get settled() {
    return this.decided;
  }

  // Something every other surface should know (a caller match, a handled
  // event, where the stream was acknowledged).
  share(message) {
    this.say({ type: "share", message });
  }

  say(data) {
    if (!this.channel) return;
    try {
      this.channel.postMessage({ ...data, from: this.me.id, since: this.me.since, mayLead: this.mayLead });
    } catch {
      // closed meanwhile
    }
  }

  heard(data) {
    if (!data.from || data.from === this.me.id) return;
    if (data.type === "bye") {
      this.others.delete(data.from);
      this.elect();
      return;
    }
    this.others.set(data.from, { since: data.since, mayLead: data.mayLead, seen: Date.now() });
    // A newcomer should hear from everyone at once, not a beat later.
    if (data.hello) this.say({ type: "alive" });
    if (data.type === "share") this.onMessage(data.message);
    this.elect();
    if (data.hello) this.onJoin();
  }

  beat() {
    this.say({ type: "alive" });
    const now = Date.now();
    for (const [id, other] of this.others) if (now - other.seen > SILENT_MS) this.others.delete(id);
    this.elect();
  }

  elect() {
    if (!this.decided) return;
    const older = (a, b) => a.since < b.since || (a.since === b.since && a.id < b.id);
    let leader = this.mayLead ? this.me : null;
    for (const [id, other] of this.others) {
      if (!other.mayLead) continue;
      const candidate = { id, since: other.since };
      if (!leader || older(candidate, leader)) leader = candidate;
    }
    this.setLeads(leader === this.me);
  }

  setLeads(leads) {
    if (leads === this.leads) return;
    this.leads = leads;
    this.onLead(leads);
  }
}
