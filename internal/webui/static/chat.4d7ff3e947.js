import * as api from "./api.dce8e3cf78.js";
import { h, mount, errorBox } from "./dom.4adba8ec87.js";
import { signInFirst } from "./account.f1a6e1c84c.js";

// One WebSocket for the chat page. It authenticates with a one-time ticket (no token in the
// URL), and when it drops (network gone, server restart, a slow-consumer close) it reconnects
// and rejoins with `since`, the last message ID seen, so the server sends exactly what was
// missed.
let conn = null;

export function leaveChat() {
  conn?.close();
  conn = null;
}

export async function chatPage(room) {
  if (!api.user()) return signInFirst("Chat");
  leaveChat();
  let rooms = [];
  try {
    rooms = (await api.get("/api/rooms")).items;
  } catch (err) {
    mount(h("h1", {}, "Chat"), errorBox(`Could not load rooms: ${err.message}`));
    return;
  }
  const log = h("ol", { class: "messages", "aria-live": "polite", "aria-label": "Messages" });
  const members = h("ul", { class: "members", "aria-label": "Online" });
  const typing = h("p", { class: "typing", "aria-live": "polite" });
  const state = h("p", { class: "status", role: "status" }, "Connecting…");
  const input = h("input", { id: "chat-text", name: "text", autocomplete: "off", maxlength: "2000", required: true });
  const form = h("form", { class: "chat-form" }, h("label", { for: "chat-text" }, `Message #${room}`), input, h("button", { type: "submit" }, "Send"));
  mount(h("div", { class: "chat" },
    h("nav", { class: "rooms", "aria-label": "Rooms" }, h("h2", {}, "Rooms"),
      h("ul", {}, rooms.map((r) => h("li", {}, h("a", { href: `/chat/${r.slug}`, "aria-current": r.slug === room ? "page" : null }, `#${r.slug}`))))),
    h("section", { class: "room" }, h("h1", {}, `#${room}`), state, log, typing, form),
    h("aside", {}, h("h2", {}, "Online"), members)));

  conn = new Connection(room, { log, members, typing, state, input });
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (text) conn.send(text);
    input.value = "";
  });
  let lastTyping = 0;
  input.addEventListener("input", () => {
    if (Date.now() - lastTyping > 2000) {
      lastTyping = Date.now();
      conn.frame({ type: "typing", room });
    }
  });
}

class Connection {
  constructor(room, ui) {
    this.room = room;
    this.ui = ui;
    this.since = "";
    this.seen = new Set();
    this.pending = new Map();
    this.retry = 0;
    this.closed = false;
    this.onOffline = () => { this.status("Offline — waiting for the network…"); this.ws?.close(); };
    this.onOnline = () => { this.retry = 0; this.open(); };
    window.addEventListener("offline", this.onOffline);
    window.addEventListener("online", this.onOnline);
    this.open();
  }

  status(text) { this.ui.state.textContent = text; }

  async open() {
    if (this.closed || (this.ws && this.ws.readyState <= WebSocket.OPEN)) return;
    clearTimeout(this.timer);
    let ticket;
    try {
      ({ ticket } = await api.post("/api/auth/ws-ticket"));
    } catch {
      return this.reconnect();
    }
    if (this.closed) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/ws?ticket=${encodeURIComponent(ticket)}`);
    this.ws = ws;
    ws.onopen = () => {
      this.retry = 0;
      this.frame({ type: "join", room: this.room, ...(this.since ? { since: this.since } : {}) });
    };
    ws.onmessage = (e) => this.receive(JSON.parse(e.data));
    ws.onclose = () => {
      if (this.ws === ws) this.ws = null;
      if (!this.closed && navigator.onLine) this.reconnect();
    };
  }

  reconnect() {
    if (this.closed) return;
    const delay = Math.min(10000, 500 * 2 ** this.retry++);
    this.status(`Disconnected — reconnecting in ${Math.round(delay / 1000)} s…`);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), delay);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    window.removeEventListener("offline", this.onOffline);
    window.removeEventListener("online", this.onOnline);
    this.ws?.close();
  }

  frame(f) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(f));
  }

  send(text) {
    const clientID = crypto.randomUUID();
    const li = h("li", { class: "pending" }, h("b", {}, api.user().name), " ", text);
    this.pending.set(clientID, li);
    this.ui.log.append(li);
    this.frame({ type: "message", room: this.room, text, client_id: clientID });
  }

  receive(f) {
    switch (f.type) {
      case "joined": {
        const missed = f.history.filter((m) => !this.seen.has(m.id));
        if (!f.recovered) this.ui.log.replaceChildren();
        missed.forEach((m) => this.show(m));
        if (!f.history.length && !this.ui.log.children.length) this.ui.log.append(h("li", { class: "empty" }, "No messages yet — say hello."));
        this.status(f.recovered ? `Back online: ${missed.length} missed message${missed.length === 1 ? "" : "s"} recovered.` : "Connected.");
        this.presence(f.members);
        break;
      }
      case "message": this.show(f.message); break;
      case "presence": this.presence(f.members); break;
      case "message_deleted": document.getElementById(`m-${f.id}`)?.remove(); break;
      case "typing":
        if (f.user_id === api.user()?.id) break;
        this.ui.typing.textContent = `${f.user_name} is typing…`;
        clearTimeout(this.typingTimer);
        this.typingTimer = setTimeout(() => { this.ui.typing.textContent = ""; }, 3000);
        break;
      case "error":
        if (f.ref) this.pending.get(f.ref)?.classList.add("failed");
        this.status(`Error: ${f.message}`);
        break;
    }
  }

  show(m) {
    if (this.seen.has(m.id)) return;
    this.seen.add(m.id);
    this.since = m.id;
    this.ui.log.querySelector(".empty")?.remove();
    const li = h("li", { id: `m-${m.id}` }, h("b", {}, m.user_name), " ", m.text,
      h("time", { datetime: m.sent_at }, new Date(m.sent_at).toLocaleTimeString()));
    const pending = m.client_id && this.pending.get(m.client_id);
    if (pending) {
      pending.replaceWith(li);
      this.pending.delete(m.client_id);
    } else this.ui.log.append(li);
    li.scrollIntoView({ block: "nearest" });
  }

  presence(members) {
    this.ui.members.replaceChildren(...members.map((m) => h("li", {}, m.name)));
  }
}
