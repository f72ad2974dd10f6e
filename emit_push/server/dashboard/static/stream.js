// The realtime streams (contract §8): the space stream, shared by every page of the tab,
// and one job's stream. Both reconnect with a growing delay; the space stream resumes
// with its cursor (since + streamInstanceId) and tells its listeners when events may
// have gone by unseen (`missed`), so they re-read over HTTP. No polling anywhere.

import { space, spaceId, wsUrl } from "./api.js";

const MIN_DELAY = 250;
const MAX_DELAY = 8000;
// The status a job leaves when an event of this type arrives, where the type alone says.
const FROM = { delivered: "pending", running: "delivered", retried: "running", completed: "running", dead: "running" };
const PENDING_FROM = { scheduled: "scheduled", delivery_timeout: "delivered" };
export const STATUS_EVENTS = new Set(["created", "pending", "delivered", "running", "retried", "completed", "dead", "killed"]);

export class SpaceStream {
  constructor({ onState, onRefused } = {}) {
    this.listeners = new Set();
    this.seq = null;
    this.instance = null;
    this.counts = null; // jobs per status: from `connected`, then kept by every transition
    this.known = new Map(); // job id -> last status seen (a kill does not say what it ended)
    this.recountTimer = null;
    this.delay = MIN_DELAY;
    this.ws = null;
    this.stopped = false;
    this.onState = onState || (() => {});
    this.onRefused = onRefused || (() => {});
  }

  subscribe(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(message) {
    for (const listener of [...this.listeners]) {
      try { listener(message); } catch (err) { console.error(err); }
    }
  }

  start() {
    this.stopped = false;
    const cursor = this.instance ? { since: this.seq, streamInstanceId: this.instance } : {};
    const ws = new WebSocket(wsUrl(`/realtime/spaces/${spaceId()}`, cursor));
    this.ws = ws;
    this.onState("connecting");
    let resumed = this.instance !== null;
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "connected") {
        this.delay = MIN_DELAY;
        this.seq = message.seq;
        this.instance = message.streamInstanceId;
        this.counts = message.counts;
        if (message.missed) this.known.clear();
        this.onState("live");
        this.emit({ ...message, missed: Boolean(message.missed), resumed });
        resumed = false;
        return;
      }
      if (typeof message.seq === "number") this.seq = message.seq;
      this.count(message);
      this.emit(message);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.stopped) return;
      if (event.code === 4401 || event.code === 4403) {
        this.onState("refused");
        this.onRefused(event.code, event.reason);
        return;
      }
      this.onState("reconnecting");
      setTimeout(() => { if (!this.stopped && !this.ws) this.start(); }, this.delay);
      this.delay = Math.min(MAX_DELAY, this.delay * 2);
    };
  }

  /** Tell the stream a job's status read over HTTP (for the counts of later kills). */
  know(jobId, status) {
    if (this.known.size > 100000) this.known.clear();
    if (!this.known.has(jobId)) this.known.set(jobId, status);
  }

  count(message) {
    if (!STATUS_EVENTS.has(message.type)) return;
    const id = message.jobId;
    let from;
    if (message.type === "created") from = null;
    else if (message.type === "pending") from = PENDING_FROM[message.data && message.data.reason] || this.known.get(id);
    else from = FROM[message.type] || this.known.get(id);
    if (this.known.size > 100000) this.known.clear();
    this.known.set(id, message.status);
    if (!this.counts) return;
    if (from === undefined) { this.recount(); return; }
    if (from === message.status) return;
    if (from) this.counts[from] = Math.max(0, (this.counts[from] || 0) - 1);
    this.counts[message.status] = (this.counts[message.status] || 0) + 1;
  }

  /** Read the counts again, soon and once, when an event left them uncertain. */
  recount() {
    clearTimeout(this.recountTimer);
    this.recountTimer = setTimeout(async () => {
      try {
        this.counts = (await space.get()).counts;
        this.emit({ type: "counts" });
      } catch { /* the next transition or reconnect tries again */ }
    }, 300);
  }

  stop() {
    this.stopped = true;
    if (this.ws) this.ws.close(1000);
    this.ws = null;
  }
}

/** One job's full stream: `init` (the job document), then its events, until it ends. */
export function connectJob(jobId, { onInit, onEvent, onState }) {
  let ws = null;
  let delay = MIN_DELAY;
  let finished = false;
  let closed = false;
  const state = onState || (() => {});
  const open = () => {
    ws = new WebSocket(wsUrl(`/realtime/${encodeURIComponent(jobId)}`));
    state("connecting");
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "init") {
        delay = MIN_DELAY;
        state("live");
        onInit(message);
      } else {
        onEvent(message);
      }
    };
    ws.onclose = (event) => {
      ws = null;
      if (closed) return;
      if (event.code === 1000 || event.code === 4404 || event.code === 4401 || event.code === 4403) {
        finished = true;
        state(event.code === 1000 ? "ended" : "refused");
        return;
      }
      state("reconnecting");
      setTimeout(() => { if (!closed && !finished) open(); }, delay);
      delay = Math.min(MAX_DELAY, delay * 2);
    };
  };
  open();
  return {
    close() {
      closed = true;
      if (ws) ws.close(1000);
    },
  };
}
