import * as api from "./api.js";
import { h, mount, errorBox, money } from "./dom.js";
import { navigate } from "./nav.js";
import { forgetTree } from "./catalog.js";

export async function productPage(id) {
  let got;
  try {
    got = await api.get(`/api/products/${encodeURIComponent(id)}`, { withResponse: true });
  } catch (err) {
    mount(h("h1", {}, "Product"), errorBox(err.status === 404 ? "This product does not exist (any more)." : err.message),
      h("p", {}, h("a", { href: "/" }, "Back to the catalog")));
    return;
  }
  const p = got.data;
  const etag = got.res.headers.get("ETag");
  const crumbs = [p.category, ...p.subcategory.split("/").filter(Boolean)];
  const trail = h("nav", { class: "crumbs", "aria-label": "Breadcrumb" },
    h("a", { href: "/" }, "Catalog"),
    crumbs.map((c, i) => [" › ", h("a", { href: `/c/${crumbs.slice(0, i + 1).join("/")}` }, c)]));
  const admin = api.user()?.role === "admin"
    ? h("div", { class: "actions" },
      h("a", { class: "button", href: `/admin/products/${p.id}/edit` }, "Edit"),
      h("button", { type: "button", class: "danger", onclick: () => remove(p, etag) }, "Delete"))
    : null;
  mount(trail, h("article", { class: "product" },
    h("h1", {}, p.name),
    h("p", { class: "price" }, money(p.price_cents, p.currency)),
    h("p", { class: "meta" }, p.stock > 0 ? `${p.stock} in stock` : "Sold out"),
    h("p", { class: "description" }, p.description || "No description."),
    admin));
}

async function remove(p, etag) {
  if (!confirm(`Delete “${p.name}”?`)) return;
  try {
    await api.request("DELETE", `/api/products/${p.id}`, { headers: etag ? { "If-Match": etag } : {} });
    forgetTree();
    navigate("/");
  } catch (err) {
    document.getElementById("main").append(errorBox(err.status === 412
      ? "Someone changed this product meanwhile; reload and try again." : `Could not delete: ${err.message}`));
  }
}
