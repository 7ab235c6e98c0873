import * as api from "./api.dce8e3cf78.js";
import { h, mount, status, errorBox, money, field } from "./dom.4adba8ec87.js";
import { navigate } from "./nav.b13939824d.js";

let tree = null;

// catalogPage lists products, optionally under a category path ("electronics/laptops"),
// with the search and filter form's values kept in the URL.
export async function catalogPage(catPath) {
  const params = new URLSearchParams(location.search);
  const [category, ...sub] = catPath.split("/").filter(Boolean);
  tree ??= await api.get("/api/categories");
  const side = h("nav", { class: "tree", "aria-label": "Categories" }, h("h2", {}, "Categories"), treeList(tree, catPath));
  const results = h("section", { class: "results", "aria-live": "polite", "aria-busy": "true" }, status("Loading products…"));
  const title = catPath ? catPath.split("/").filter(Boolean).join(" › ") : "All products";
  mount(h("div", { class: "catalog" }, side, h("div", {}, h("h1", {}, title), searchForm(params), results)));

  const q = new URLSearchParams();
  for (const k of ["q", "min_price", "max_price", "in_stock", "sort", "cursor"]) {
    const v = params.get(k);
    if (!v) continue;
    q.set(k, k.endsWith("_price") ? String(Math.round(parseFloat(v) * 100)) : v);
  }
  q.set("limit", "12");
  const path = category
    ? `/api/products/${encodeURIComponent(category)}/${sub.map(encodeURIComponent).join("/")}`
    : "/api/products";
  try {
    const page = await api.get(`${path}?${q}`);
    results.replaceChildren(...productList(page, params));
  } catch (err) {
    results.replaceChildren(errorBox(`Could not load products: ${err.message}`));
  }
  results.setAttribute("aria-busy", "false");
}

function treeList(nodes, current) {
  if (!nodes?.length) return null;
  return h("ul", {}, nodes.map((c) => h("li", {},
    h("a", { href: `/c/${c.path}`, "aria-current": c.path === current ? "page" : null }, `${c.slug} (${c.count})`),
    treeList(c.children, current))));
}

function searchForm(params) {
  const form = h("form", { class: "search", role: "search" },
    field("Search", "q", { type: "search", value: params.get("q") ?? "" }),
    field("Min price", "min_price", { type: "number", min: "0", step: "0.01", value: params.get("min_price") ?? "" }),
    field("Max price", "max_price", { type: "number", min: "0", step: "0.01", value: params.get("max_price") ?? "" }),
    field("Availability", "in_stock", { tag: "select", value: params.get("in_stock") ?? "", options: [["", "Any"], ["true", "In stock"], ["false", "Sold out"]] }),
    field("Sort", "sort", { tag: "select", value: params.get("sort") ?? "", options: [["", "Best / newest"], ["price", "Price, low first"], ["-price", "Price, high first"], ["name", "Name"], ["created_at", "Oldest"]] }),
    h("button", { type: "submit" }, "Search"));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const next = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (v) next.set(k, v);
    navigate(`${location.pathname}${next.size ? `?${next}` : ""}`);
  });
  return form;
}

function productList(page, params) {
  if (!page.items.length) return [status("No products match.")];
  const list = h("ul", { class: "products" }, page.items.map((p) => h("li", { class: "card" },
    h("a", { href: `/p/${p.id}` }, p.name),
    h("p", { class: "price" }, money(p.price_cents, p.currency)),
    h("p", { class: "meta" }, `${p.category}${p.subcategory ? ` › ${p.subcategory.split("/").join(" › ")}` : ""}`,
      p.stock > 0 ? ` · ${p.stock} in stock` : " · sold out"))));
  const nav = h("nav", { class: "pager", "aria-label": "Pages" });
  if (params.has("cursor")) {
    const first = new URLSearchParams(params);
    first.delete("cursor");
    nav.append(h("a", { href: `${location.pathname}?${first}` }, "← First page"));
  }
  if (page.next_cursor) {
    const next = new URLSearchParams(params);
    next.set("cursor", page.next_cursor);
    nav.append(h("a", { href: `${location.pathname}?${next}`, rel: "next" }, "Next page →"));
  }
  return [list, nav];
}

// forgetTree drops the cached category tree after a catalog write changed the counts.
export const forgetTree = () => { tree = null; };
