import * as api from "./api.js";
import { h, mount, field, showErrors, errorBox } from "./dom.js";
import { navigate } from "./nav.js";

function authForm(title, fields, submitText, onSubmit) {
  const form = h("form", { class: "form", novalidate: true }, fields, h("div", { class: "form-error", role: "alert" }),
    h("button", { type: "submit" }, submitText));
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const note = form.querySelector(".form-error");
    note.textContent = "";
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await onSubmit(Object.fromEntries(new FormData(form)));
    } catch (err) {
      const rest = showErrors(form, err.problem);
      if (!err.problem?.errors?.length || rest.length) note.textContent = [err.message, ...rest].join(" ");
    } finally {
      button.disabled = false;
    }
  });
  mount(h("h1", {}, title), form);
  form.querySelector("input").focus();
}

export function loginPage() {
  authForm("Log in", [
    field("Email", "email", { type: "email", autocomplete: "username", required: true }),
    field("Password", "password", { type: "password", autocomplete: "current-password", required: true }),
  ], "Log in", async ({ email, password }) => {
    await api.login(email, password);
    navigate("/", { replace: true });
  });
  document.getElementById("main").append(h("p", {}, "No account yet? ", h("a", { href: "/register" }, "Register")));
}

export function registerPage() {
  authForm("Register", [
    field("Name", "name", { autocomplete: "name", required: true }),
    field("Email", "email", { type: "email", autocomplete: "email", required: true }),
    field("Password (at least 8 characters)", "password", { type: "password", autocomplete: "new-password", required: true }),
  ], "Create account", async ({ name, email, password }) => {
    await api.post("/api/users", { name, email, password }, { auth: false });
    await api.login(email, password);
    navigate("/", { replace: true });
  });
}

export const signInFirst = (what) => mount(h("h1", {}, what), errorBox("Log in first."), h("p", {}, h("a", { href: "/login" }, "Log in")));
