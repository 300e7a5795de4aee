// Admin: the charts, adding and disabling users, quota and budget edits, key revokes,
// delivery replays.
import { api, clearErrors, showErrors, toast } from "./api.js";
import { spendChart, videosChart } from "./charts.js";

export function start() {
  const days = JSON.parse(document.getElementById("activity-data").textContent);
  const draw = () => {
    videosChart(document.querySelector('[data-chart="videos"]'), days);
    spendChart(document.querySelector('[data-chart="spend"]'), days);
  };
  draw();
  // Drawn again across the phone breakpoint: the labels per axis follow the width.
  window.matchMedia("(max-width: 640px)").addEventListener("change", draw);

  const userForm = document.getElementById("user-form");
  userForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(userForm);
    const f = userForm.elements;
    try {
      await api("POST", "/api/admin/users", { email: f.email.value, password: f.password.value, role: f.role.value });
      window.location.reload();
    } catch (error) {
      showErrors(userForm, error);
    }
  });

  for (const form of document.querySelectorAll("form[data-quota-for]")) {
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const userId = form.dataset.quotaFor;
      const slot = document.querySelector(`[data-error-for="${CSS.escape(userId)}"]`);
      slot.textContent = "";
      const f = form.elements;
      const body = {
        max_videos: f.max_videos.value === "" ? null : Number(f.max_videos.value),
        monthly_budget: f.monthly_budget.value === "" ? null : f.monthly_budget.value,
        period_days: Number(f.period_days.value),
      };
      try {
        const saved = await api("PUT", `/api/admin/users/${encodeURIComponent(userId)}/quota`, body);
        toast(`Saved: ${saved.data.max_videos ?? "unlimited"} videos, ${saved.data.monthly_budget != null ? `$${saved.data.monthly_budget}` : "unlimited"} a month.`);
      } catch (error) {
        slot.textContent = `${error.field ? `${error.field}: ` : ""}${error.message}`;
      }
    });
  }

  document.addEventListener("click", async (event) => {
    const toggle = event.target.closest('[data-action="toggle-user"]');
    if (toggle) {
      const disable = toggle.dataset.disabled !== "true";
      try {
        await api("PATCH", `/api/admin/users/${encodeURIComponent(toggle.dataset.userId)}`, { disabled: disable });
        toggle.dataset.disabled = String(disable);
        toggle.textContent = disable ? "Enable" : "Disable";
        toggle.classList.toggle("danger", !disable);
        toast(disable ? "User disabled." : "User enabled.");
      } catch (error) {
        toast(error.message);
      }
      return;
    }
    const revoke = event.target.closest('[data-action="revoke-key"]');
    if (revoke) {
      if (!window.confirm("Revoke this key? Anything using it stops working at once.")) return;
      try {
        await api("DELETE", `/api/admin/keys/${encodeURIComponent(revoke.dataset.keyId)}`);
        const pill = document.createElement("span");
        pill.className = "pill cancelled";
        pill.textContent = "Revoked";
        revoke.replaceWith(pill);
        toast("Key revoked.");
      } catch (error) {
        toast(error.message);
      }
      return;
    }
    const replay = event.target.closest('[data-action="replay"]');
    if (replay) {
      try {
        const answer = await api("POST", `/api/admin/deliveries/${encodeURIComponent(replay.dataset.deliveryId)}/replay`);
        const cell = replay.closest("tr").querySelector('[data-role="delivery-status"] .pill');
        cell.className = "pill queued";
        cell.textContent = answer.data.status;
        toast("Queued to be sent again.");
      } catch (error) {
        toast(error.message);
      }
    }
  });
}
