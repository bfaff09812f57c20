// Which SDK calls this page made for each call, so that none is made twice
// and none goes backwards, whatever the stream sends. The gateway's claim
// stops an event id from going out twice; this stops the same call's
// start, answer, end or completion going out again under a new id (a Redis
// that lost its data resends a call's events with fresh ids).

// A call's SDK calls in the only order HubSpot accepts them; the two starts
// share a rank (one call has one start).
const RANK = {
  incomingCall: 0,
  outgoingCall: 0,
  callAnswered: 1,
  callTransferred: 2,
  callEnded: 3,
  callCompleted: 4,
};

// Enough for a long day of calls; the oldest call is forgotten first.
const CALLS_KEPT = 1000;

export class SdkLedger {
  constructor(limit = CALLS_KEPT) {
    this.limit = limit;
    this.made = new Map(); // externalCallId -> highest rank made
  }

  // Whether `method` for the call may still go out: never twice, never
  // after a later step of the same call.
  allows(externalCallId, method) {
    const rank = RANK[method];
    if (rank === undefined) return false;
    const highest = this.made.get(externalCallId);
    return highest === undefined || rank > highest;
  }

  // Whether any SDK call was made for the call.
  started(externalCallId) {
    return this.made.has(externalCallId);
  }

  record(externalCallId, method) {
    const rank = RANK[method];
    if (rank === undefined) return;
    const highest = this.made.get(externalCallId);
    this.made.delete(externalCallId); // re-inserted: the newest call is kept longest
    this.made.set(externalCallId, Math.max(rank, highest ?? -1));
    if (this.made.size > this.limit) this.made.delete(this.made.keys().next().value);
  }
}
