// Sign in: POST /api/auth/login starts the session (cookie), then on to where the user was going.
import { api, clearErrors, showErrors } from "./api.js";

export function start() {
  const form = document.getElementById("login-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    const data = new FormData(form);
    const email = String(data.get("email") || "").trim();
    const password = String(data.get("password") || "");
    if (!email) return showErrors(form, { field: "email", message: "Enter your email." });
    if (!password) return showErrors(form, { field: "password", message: "Enter your password." });
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    try {
      await api("POST", "/api/auth/login", { email, password });
      const next = form.dataset.next || "/";
      window.location.assign(next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/");
    } catch (error) {
      showErrors(form, error.status === 401 ? { message: error.message } : error);
      button.disabled = false;
    }
  });
}
