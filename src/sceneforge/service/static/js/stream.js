// A topic's Server-Sent Events, read with fetch() (EventSource cannot send the token header).
//
// When the connection drops (the service restarts, a proxy cuts it, the laptop sleeps) it
// reconnects by itself with Last-Event-ID, so the service replays exactly what was missed.

import {authHeaders, needToken, topicPath} from "./api.js";

const MAX_WAIT_MS = 10000;

/**
 * new EventStream(slug, {after, onEvent, onState}).start()
 * onEvent(event) gets every event once, in order; onState("connecting" | "live" | "reconnecting" | "closed").
 */
export class EventStream {
  constructor(slug, {after = 0, onEvent, onState = () => {}}) {
    this.slug = slug;
    this.lastId = after;
    this.onEvent = onEvent;
    this.onState = onState;
    this.retryMs = 1000;
    this.controller = null;
    this.stopped = false;
  }

  start() {
    this.loop();
    return this;
  }

  stop() {
    this.stopped = true;
    if (this.controller) this.controller.abort();
    this.onState("closed");
  }

  async loop() {
    let wait = 0;
    while (!this.stopped) {
      if (wait) {
        this.onState("reconnecting");
        await new Promise((resolve) => setTimeout(resolve, wait));
        if (this.stopped) return;
      }
      const outcome = await this.connect();
      if (outcome === "gone") {
        this.stop();
        return;
      }
      // A stream that delivered something starts the backoff again; one that failed at once grows it.
      wait = outcome === "read" ? this.retryMs : Math.min(MAX_WAIT_MS, Math.max(this.retryMs, wait * 2));
    }
  }

  /** One connection: "read" (it ended after being open), "failed" (could not open) or "gone" (404). */
  async connect() {
    this.controller = new AbortController();
    this.onState("connecting");
    let resp;
    try {
      const headers = authHeaders({"Last-Event-ID": String(this.lastId), Accept: "text/event-stream"});
      resp = await fetch(topicPath(this.slug, "/events"), {headers, signal: this.controller.signal, cache: "no-store"});
    } catch {
      return "failed";
    }
    if (resp.status === 401) {
      await needToken().catch(() => {});
      return "failed";
    }
    if (resp.status === 404) return "gone";
    if (!resp.ok || !resp.body) return "failed";
    this.onState("live");
    try {
      await this.read(resp.body);
    } catch {
      // aborted or cut: reconnect below
    }
    return "read";
  }

  async read(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const {value, done} = await reader.read();
      if (done || this.stopped) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        this.message(buffer.slice(0, end));
        buffer = buffer.slice(end + 2);
      }
    }
  }

  /** One SSE message: its `id`, `retry` and `data` lines (comments are keep-alives). */
  message(block) {
    let data = "";
    for (const line of block.split("\n")) {
      const colon = line.indexOf(":");
      if (colon === 0) continue;
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "data") data += (data ? "\n" : "") + value;
      else if (field === "retry" && /^\d+$/.test(value)) this.retryMs = Math.min(MAX_WAIT_MS, Number(value));
    }
    if (!data) return;
    let event;
    try {
      event = JSON.parse(data);
    } catch {
      return;
    }
    if (typeof event.id !== "number" || event.id <= this.lastId) return;
    this.lastId = event.id;
    this.onEvent(event);
  }
}
