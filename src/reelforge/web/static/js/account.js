// Account: change your own password, create and revoke API keys.
import { api, clearErrors, showErrors, toast } from "./api.js";

export function start() {
  const passwordForm = document.getElementById("password-form");
  passwordForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(passwordForm);
    const notice = passwordForm.querySelector("[data-notice]");
    notice.textContent = "";
    const current = passwordForm.elements.current_password.value;
    const next = passwordForm.elements.new_password.value;
    if (!current) return showErrors(passwordForm, { field: "current_password", message: "Enter your current password." });
    if (next.length < 10) return showErrors(passwordForm, { field: "new_password", message: "Use at least 10 characters." });
    try {
      await api("POST", "/api/me/password", { current_password: current, new_password: next });
      passwordForm.reset();
      notice.textContent = "Password changed.";
    } catch (error) {
      showErrors(passwordForm, error);
    }
  });

  const keyForm = document.getElementById("key-form");
  keyForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(keyForm);
    try {
      const created = await api("POST", "/api/keys", { name: keyForm.elements.name.value });
      document.getElementById("new-key-value").textContent = created.data.key;
      document.getElementById("new-key").hidden = false;
      toast("Key created: copy it now, it won't be shown again.");
      const tbody = document.getElementById("keys");
      const row = document.createElement("tr");
      const cells = [created.data.name || "—", `${created.data.prefix}…`, "—"];
      for (const [i, text] of cells.entries()) {
        const cell = document.createElement("td");
        if (i === 1) { const code = document.createElement("code"); code.textContent = text; cell.append(code); }
        else cell.textContent = text;
        row.append(cell);
      }
      const actions = document.createElement("td");
      actions.className = "num";
      const revoke = document.createElement("button");
      Object.assign(revoke, { type: "button", className: "btn small danger", textContent: "Revoke" });
      revoke.dataset.action = "revoke";
      revoke.dataset.keyId = created.data.id;
      actions.append(revoke);
      row.append(actions);
      row.dataset.keyId = created.data.id;
      const empty = tbody.querySelector("td[colspan]");
      if (empty) empty.parentElement.remove();
      tbody.prepend(row);
      keyForm.reset();
    } catch (error) {
      showErrors(keyForm, error);
    }
  });

  document.addEventListener("click", async (event) => {
    const copy = event.target.closest('[data-action="copy-key"]');
    if (copy) {
      await navigator.clipboard.writeText(document.getElementById("new-key-value").textContent).catch(() => {});
      toast("Copied.");
      return;
    }
    const revoke = event.target.closest('[data-action="revoke"]');
    if (!revoke) return;
    if (!window.confirm("Revoke this key? Anything using it stops working.")) return;
    try {
      await api("DELETE", `/api/keys/${encodeURIComponent(revoke.dataset.keyId)}`);
      const pill = document.createElement("span");
      pill.className = "pill cancelled";
      pill.textContent = "Revoked";
      revoke.replaceWith(pill);
    } catch (error) {
      toast(error.message);
    }
  });
}
