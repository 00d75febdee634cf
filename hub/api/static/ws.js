// The hub's WebSocket (/api/ws, Home Assistant's shape), kept connected: a lost connection is said
// on screen and retried with a back-off, and every subscription is made again once it is back.

import { token } from "./api.js";

export class HubSocket extends EventTarget {
  constructor() {
    super();
    this.nextId = 1;
    this.pending = new Map();      // id -> {resolve, reject}
    this.subscriptions = new Map(); // id -> {message, handler}
    this.delay = 500;
    this.closed = false;
    this.ready = false;
    this.connect();
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = this.socket = new WebSocket(`${scheme}://${location.host}/api/ws`);
    socket.onmessage = (event) => this.receive(JSON.parse(event.data));
    socket.onclose = () => {
      this.ready = false;
      for (const { reject } of this.pending.values()) reject(new Error("connection lost"));
      this.pending.clear();
      if (this.closed) return;
      this.dispatchEvent(new CustomEvent("status", { detail: "reconnecting" }));
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 10000);
    };
  }

  receive(msg) {
    if (msg.type === "auth_required") {
      this.socket.send(JSON.stringify({ type: "auth", access_token: token.get() || "" }));
    } else if (msg.type === "auth_invalid") {
      this.closed = true;
      window.dispatchEvent(new CustomEvent("ruffhub:unauthorized"));
    } else if (msg.type === "auth_ok") {
      this.ready = true;
      this.delay = 500;
      this.dispatchEvent(new CustomEvent("status", { detail: "connected" }));
      const old = [...this.subscriptions.values()];
      this.subscriptions.clear();
      for (const sub of old) this.subscribe(sub.message, sub.handler);
    } else if (msg.type === "event") {
      const sub = this.subscriptions.get(msg.id);
      if (sub) sub.handler(msg.event);
    } else if (msg.id !== undefined && this.pending.has(msg.id)) {
      const { resolve, reject } = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.success === false) reject(new Error((msg.error && msg.error.message) || "refused"));
      else resolve(msg.result);
    }
  }

  request(message) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.socket.send(JSON.stringify({ ...message, id }));
    });
  }

  // Subscribe now (or once connected) and again after every reconnection; returns the unsubscribe.
  subscribe(message, handler) {
    const id = this.nextId++;
    this.subscriptions.set(id, { message, handler });
    if (this.ready) this.socket.send(JSON.stringify({ ...message, id }));
    return () => {
      this.subscriptions.delete(id);
      if (this.ready) this.socket.send(JSON.stringify({ type: "unsubscribe", subscription: id, id: this.nextId++ }));
    };
  }

  close() {
    this.closed = true;
    this.socket.close();
  }
}
