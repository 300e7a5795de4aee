// Every page: sign-out, local times, then the page's own module (body[data-page]).
import { api, toast } from "./api.js";

const PAGES = new Set(["login", "gallery", "create", "video", "compare", "account", "admin"]);

function localTimes() {
  const format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
  const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  for (const node of document.querySelectorAll("time[datetime]")) {
    const when = new Date(node.getAttribute("datetime"));
    if (Number.isNaN(when.getTime())) continue;
    node.title = format.format(when);
    if (node.hasAttribute("data-relative")) {
      const minutes = Math.round((when.getTime() - Date.now()) / 60000);
      if (Math.abs(minutes) < 60) node.textContent = relative.format(minutes, "minute");
      else if (Math.abs(minutes) < 60 * 24) node.textContent = relative.format(Math.round(minutes / 60), "hour");
      else node.textContent = relative.format(Math.round(minutes / 1440), "day");
    } else {
      node.textContent = format.format(when);
    }
  }
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest('[data-action="logout"]');
  if (!button) return;
  button.disabled = true;
  try {
    await api("POST", "/api/auth/logout");
  } catch (error) {
    toast(error.message);
  }
  window.location.assign("/login");
});

localTimes();
// Installable as an app, with an offline page (the worker caches nothing personal).
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js", { scope: "/" }).catch(() => {});
}
const page = document.body.dataset.page;
if (PAGES.has(page)) {
  import(`./${page}.js`).then((module) => {
    // Forms the page's module submits are inert until it can: a native submission would put
    // their fields (a password among them) in a GET URL. Enabled in the same turn as start().
    for (const button of document.querySelectorAll("[data-needs-script]")) button.disabled = false;
    if (module.start) module.start();
  });
}
