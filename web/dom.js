// Building DOM nodes without innerHTML, so text from the API is never parsed as markup.

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// mount replaces the page content and moves focus there for keyboard and screen-reader users.
export function mount(...children) {
  const main = document.getElementById("main");
  main.replaceChildren();
  append(main, children);
  return main;
}

export const status = (text) => h("p", { class: "status", role: "status" }, text);
export const errorBox = (text) => h("p", { class: "error", role: "alert" }, text);

export function money(cents, currency) {
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency }).format(cents / 100);
  } catch {
    return `${(cents / 100).toFixed(2)} ${currency}`;
  }
}

// field is a labelled input with a slot for its error message, tied by aria-describedby.
export function field(label, name, attrs = {}) {
  const id = `f-${name}`;
  const input = attrs.tag === "textarea"
    ? h("textarea", { id, name, ...attrs, tag: undefined, value: undefined }, attrs.value ?? "")
    : attrs.tag === "select"
      ? h("select", { id, name, ...attrs, tag: undefined, options: undefined, value: undefined },
        attrs.options.map(([v, t]) => h("option", { value: v, selected: v === attrs.value }, t)))
      : h("input", { id, name, ...attrs, "aria-describedby": `${id}-err` });
  if (attrs.tag) input.setAttribute("aria-describedby", `${id}-err`);
  return h("div", { class: "field" },
    h("label", { for: id }, label), input, h("p", { class: "field-error", id: `${id}-err` }));
}

// showErrors puts a problem body's field errors at their fields; it returns the messages it
// could not place.
export function showErrors(form, problem) {
  for (const el of form.querySelectorAll(".field-error")) el.textContent = "";
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  const rest = [];
  for (const e of problem?.errors ?? []) {
    const input = form.elements.namedItem(e.field);
    if (input) {
      input.setAttribute("aria-invalid", "true");
      document.getElementById(`${input.id}-err`).textContent = e.message;
    } else rest.push(`${e.field}: ${e.message}`);
  }
  const first = form.querySelector("[aria-invalid]");
  if (first) first.focus();
  return rest;
}
