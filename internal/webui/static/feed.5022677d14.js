import { h, mount } from "./dom.4adba8ec87.js";
import { forgetTree } from "./catalog.81941aa0d1.js";

// The live feed follows catalog changes over server-sent events. EventSource reconnects by
// itself and sends Last-Event-ID, so the server replays what happened while it was away; an
// "event: reset" says the gap was too long to replay.
let source = null;

export function feedPage() {
  source?.close();
  const list = h("ol", { class: "feed", "aria-live": "polite", "aria-label": "Catalog changes" },
    h("li", { class: "empty" }, "Waiting for catalog changes…"));
  const state = h("p", { class: "status", role: "status" }, "Connecting…");
  mount(h("h1", {}, "Live feed"), state, list);
  source = new EventSource("/api/events?types=product.created,product.updated,product.deleted");
  source.onopen = () => { state.textContent = "Live."; };
  source.onerror = () => { state.textContent = "Disconnected — resuming…"; };
  const verbs = { "product.created": "New", "product.updated": "Changed", "product.deleted": "Removed" };
  for (const type of Object.keys(verbs)) {
    source.addEventListener(type, (e) => {
      const ev = JSON.parse(e.data);
      const p = ev.data;
      forgetTree();
      list.querySelector(".empty")?.remove();
      list.prepend(h("li", {}, h("span", { class: "tag" }, verbs[type]), " ",
        type === "product.deleted" ? p.name : h("a", { href: `/p/${p.id}` }, p.name),
        h("time", { datetime: ev.occurred_at }, new Date(ev.occurred_at).toLocaleTimeString())));
    });
  }
  source.addEventListener("reset", () => {
    list.prepend(h("li", { class: "notice" }, "Some changes were missed while offline; the catalog has the current state."));
  });
}

// stopFeed ends the stream when the app leaves the page.
export function stopFeed() {
  source?.close();
  source = null;
}
