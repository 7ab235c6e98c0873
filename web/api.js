// The one place that talks to the REST API. The access token lives in this module's memory
// only; the refresh token is an HttpOnly cookie the server sets in cookie mode, so no
// script (ours or an injected one) can read it, and nothing goes to localStorage.

const COOKIE_MODE = { "X-Plaza-Token-Mode": "cookie" };

let access = "";
let me = null;
let refreshing = null;
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

export const user = () => me;
export const onSession = (fn) => listeners.add(fn);
const changed = () => listeners.forEach((fn) => fn(me));

async function send(method, path, { body, headers = {}, auth = true } = {}) {
  const h = { Accept: "application/json", ...headers };
  if (auth && access) h.Authorization = `Bearer ${access}`;
  if (body !== undefined) h["Content-Type"] ??= "application/json";
  return fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body), credentials: "same-origin" });
}

async function parse(res) {
  if (res.status === 204 || res.status === 304) return null;
  const type = res.headers.get("Content-Type") || "";
  const data = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) throw new ApiError(res.status, typeof data === "object" ? data : null);
  return data;
}

// request sends one API call; a 401 with a session renews the access token once and retries.
export async function request(method, path, opts = {}) {
  let res = await send(method, path, opts);
  if (res.status === 401 && access && opts.auth !== false) {
    if (await refresh()) res = await send(method, path, opts);
  }
  const data = await parse(res);
  return opts.withResponse ? { data, res } : data;
}

export const get = (path, opts) => request("GET", path, opts);
export const post = (path, body, opts) => request("POST", path, { ...opts, body });

// refresh renews the token pair from the cookie. Refresh tokens are single-use (a reused one
// ends the login), so concurrent callers share one refresh.
export function refresh() {
  refreshing ??= (async () => {
    try {
      const res = await send("POST", "/api/auth/refresh", { headers: COOKIE_MODE, auth: false });
      if (!res.ok) {
        access = "";
        me = null;
        return false;
      }
      access = (await res.json()).access_token;
      me = await get("/api/users/me");
      return true;
    } catch {
      return false;
    } finally {
      refreshing = null;
      changed();
    }
  })();
  return refreshing;
}

export async function login(email, password) {
  const tokens = await request("POST", "/api/auth/login", { body: { email, password }, headers: COOKIE_MODE, auth: false });
  access = tokens.access_token;
  me = await get("/api/users/me");
  changed();
}

export async function logout() {
  try {
    await request("POST", "/api/auth/logout", { headers: COOKIE_MODE });
  } finally {
    access = "";
    me = null;
    changed();
  }
}
