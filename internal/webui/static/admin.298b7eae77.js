import * as api from "./api.dce8e3cf78.js";
import { h, mount, field, showErrors, errorBox } from "./dom.4adba8ec87.js";
import { navigate } from "./nav.b13939824d.js";
import { forgetTree } from "./catalog.81941aa0d1.js";
import { signInFirst } from "./account.f1a6e1c84c.js";

// productFormPage creates (id null) or edits a product. Validation happens on the server;
// its field errors (422, or 400 for a value of the wrong type) are shown at the fields.
export async function productFormPage(id) {
  const title = id ? "Edit product" : "New product";
  if (api.user()?.role !== "admin") {
    if (!api.user()) return signInFirst(title);
    mount(h("h1", {}, title), errorBox("Only admins may change the catalog."));
    return;
  }
  let p = { name: "", description: "", price_cents: 0, currency: "USD", category: "", subcategory: "", stock: 0 };
  let etag = null;
  if (id) {
    const got = await api.get(`/api/products/${encodeURIComponent(id)}`, { withResponse: true });
    p = got.data;
    etag = got.res.headers.get("ETag");
  }
  const form = h("form", { class: "form", novalidate: true },
    field("Name", "name", { value: p.name, required: true }),
    field("Description", "description", { tag: "textarea", value: p.description, rows: "4" }),
    field("Price", "price_cents", { type: "number", step: "0.01", min: "0", value: (p.price_cents / 100).toFixed(2), required: true }),
    field("Currency", "currency", { value: p.currency, maxlength: "3" }),
    field("Category", "category", { value: p.category, required: true }),
    field("Subcategory (e.g. laptops/gaming)", "subcategory", { value: p.subcategory }),
    field("Stock", "stock", { type: "number", step: "1", min: "0", value: String(p.stock) }),
    h("div", { class: "form-error", role: "alert" }),
    h("button", { type: "submit" }, id ? "Save" : "Create"));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const note = form.querySelector(".form-error");
    note.textContent = "";
    const v = Object.fromEntries(new FormData(form));
    const body = {
      name: v.name, description: v.description, currency: v.currency, category: v.category, subcategory: v.subcategory,
      price_cents: v.price_cents === "" ? null : Math.round(Number(v.price_cents) * 100),
      stock: v.stock === "" ? 0 : Number(v.stock),
    };
    try {
      const saved = id
        ? await api.request("PUT", `/api/products/${id}`, { body, headers: etag ? { "If-Match": etag } : {} })
        : await api.post("/api/products", body);
      forgetTree();
      navigate(`/p/${saved.id}`);
    } catch (err) {
      const rest = showErrors(form, err.problem);
      if (!err.problem?.errors?.length || rest.length) {
        note.textContent = err.status === 412 ? "Someone changed this product meanwhile; reload to edit the new version." : [err.message, ...rest].join(" ");
      }
    }
  });
  mount(h("h1", {}, title), form);
  form.querySelector("input").focus();
}
