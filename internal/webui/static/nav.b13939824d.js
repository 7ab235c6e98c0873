// Navigation inside the app. app.js registers how to render; pages only call navigate, so
// no module imports app.js and the module graph stays acyclic (the embed step hashes it
// leaves first).
let render = () => {};

export const setRenderer = (fn) => { render = fn; };

export function navigate(to, { replace = false } = {}) {
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  render();
}
