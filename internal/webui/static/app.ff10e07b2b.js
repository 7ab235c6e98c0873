// Plaza's web app: plain ES modules, no build step. The router maps paths to pages; the
// server answers every non-API path with index.html, so deep links and reloads work.
import * as api from "./api.dce8e3cf78.js";
import { h, mount, status, errorBox } from "./dom.4adba8ec87.js";
import { catalogPage } from "./catalog.81941aa0d1.js";
import { productPage } from "./product.83d50b2ea3.js";
import { loginPage, registerPage } from "./account.f1a6e1c84c.js";
import { productFormPage } from "./admin.298b7eae77.js";
import { chatPage, leaveChat } from "./chat.4d7ff3e947.js";
import { feedPage, stopFeed } from "./feed.5022677d14.js";
import { navigate, setRenderer } from "./nav.b13939824d.js";

const routes = [
  [/^\/$/, () => catalogPage("")],
  [/^\/c\/(.+)$/, (m) => catalogPage(m[1])],
  [/^\/p\/([^/]+)$/, (m) => productPage(m[1])],
  [/^\/login$/, () => loginPage()],
  [/^\/register$/, () => registerPage()],
  [/^\/admin\/products\/new$/, () => productFormPage(null)],
  [/^\/admin\/products\/([^/]+)\/edit$/, (m) => productFormPage(m[1])],
  [/^\/chat(?:\/([a-z0-9-]+))?$/, (m) => chatPage(m[1] || "general")],
  [/^\/feed$/, () => feedPage()],
];

async function render() {
  const path = decodeURI(location.pathname);
  if (!path.startsWith("/chat")) leaveChat();
  if (path !== "/feed") stopFeed();
  for (const [re, page] of routes) {
    const m = path.match(re);
    if (!m) continue;
    mount(status("Loading…"));
    try {
      await page(m);
    } catch (err) {
      mount(errorBox(err.message || "Something went wrong."));
    }
    return;
  }
  mount(h("h1", {}, "Not found"), errorBox("There is no page here."), h("p", {}, h("a", { href: "/" }, "Back to the catalog")));
}

// Same-origin links navigate inside the app instead of reloading it.
document.addEventListener("click", (e) => {
  const a = e.target.closest("a[href]");
  if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target) return;
  const url = new URL(a.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/swagger") || url.pathname.startsWith("/api/")) return;
  e.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", render);
setRenderer(render);

function showSession(user) {
  for (const el of document.querySelectorAll("[data-signed-in]")) el.hidden = !user;
  for (const el of document.querySelectorAll("[data-signed-out]")) el.hidden = !!user;
  for (const el of document.querySelectorAll("[data-admin]")) el.hidden = user?.role !== "admin";
  document.getElementById("whoami").textContent = user ? `Signed in as ${user.name}` : "";
}
api.onSession(showSession);

document.getElementById("logout").addEventListener("click", async () => {
  await api.logout();
  navigate("/");
});

// A reload loses the access token (it lives in memory only); the refresh cookie brings it back.
showSession(null);
api.refresh().finally(render);
