// Calls to Reelforge's own /api with the session cookie; unsafe methods echo the CSRF cookie.

export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
  }
}

function csrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)reelforge_csrf=([^;]+)/);
  return match ? decodeURIComponent(match[1]) : "";
}

export async function api(method, url, body) {
  const headers = { accept: "application/json" };
  if (!["GET", "HEAD"].includes(method)) headers["x-csrf-token"] = csrfToken();
  let payload;
  if (body instanceof FormData) {
    payload = body;
  } else if (body !== undefined) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url, { method, headers, body: payload, credentials: "same-origin" });
  } catch {
    throw new ApiError(0, "network", "Reelforge can't be reached; check your connection.");
  }
  const json = await response.json().catch(() => null);
  if (!response.ok || (json && json.success === false)) {
    // /api's errors: `error` is the text, `code` and `field` stand beside it.
    let field = (json && json.field) || null;
    let message = (json && typeof json.error === "string" && json.error)
      || `Request failed (${response.status})`;
    // The text starts with the field it names; beside that field the rest stands alone.
    if (field && message.startsWith(`${field}: `)) message = message.slice(field.length + 2);
    // FastAPI's own 422s carry a list of problems.
    if (Array.isArray(json && json.detail) && json.detail.length) {
      const first = json.detail[0];
      field = first.loc ? first.loc[first.loc.length - 1] : null;
      message = first.msg;
    }
    if (response.status === 401) {
      window.location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    }
    throw new ApiError(response.status, (json && json.code) || "error", message, field);
  }
  return json;
}

// Show an ApiError next to its field in `form` (elements marked data-error="<field>").
export function showErrors(form, error) {
  clearErrors(form);
  const slot = (error.field && form.querySelector(`[data-error="${CSS.escape(error.field)}"]`))
    || form.querySelector('[data-error="form"]');
  if (slot) {
    // Field errors read "<field> <message>" on the wire; beside the field the message stands alone.
    const text = String(error.message || "");
    slot.textContent = text.charAt(0).toUpperCase() + text.slice(1);
    slot.hidden = false;
    const field = slot.closest(".field");
    if (field) field.classList.add("invalid");
    const input = field && field.querySelector("input, textarea, select");
    if (input) {
      input.setAttribute("aria-invalid", "true");
      input.focus();
    }
  } else {
    toast(error.message);
  }
}

export function clearErrors(form) {
  for (const slot of form.querySelectorAll("[data-error]")) slot.textContent = "";
  for (const field of form.querySelectorAll(".field.invalid")) field.classList.remove("invalid");
  for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
}

let toastTimer;
export function toast(message) {
  const box = document.getElementById("toast");
  if (!box) return;
  box.textContent = message;
  box.classList.add("show");
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => box.classList.remove("show"), 3500);
}
