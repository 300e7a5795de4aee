// Create: pickers from the capability catalog, live character count and cost estimate,
// the reference image checked against the chosen size, errors shown by their field.
import { api, clearErrors, showErrors } from "./api.js";

const TYPES = new Set(["image/jpeg", "image/png", "image/webp"]);

function money(value) {
  return `$${Number(value).toFixed(2)}`;
}

export function start() {
  const form = document.getElementById("create-form");
  const models = JSON.parse(document.getElementById("models-data").textContent);
  const byName = new Map(models.map((m) => [m.name, m]));
  const max = Number(form.dataset.maxPrompt);
  const prompt = form.querySelector("#prompt");
  const counter = form.querySelector("#prompt-count");
  const model = form.querySelector("#model");
  const size = form.querySelector("#size");
  const seconds = form.querySelector("#seconds");
  const description = form.querySelector("#model-description");
  const file = form.querySelector("#input_reference");
  const preview = form.querySelector("#reference-preview");
  const info = form.querySelector("#reference-info");
  const clear = form.querySelector("#reference-clear");
  const referenceError = form.querySelector('[data-error="input_reference"]');
  const estimate = document.getElementById("estimate");
  const estimateDetail = document.getElementById("estimate-detail");
  const submit = document.getElementById("create-submit");
  const note = document.getElementById("submit-note");
  const budgetLeft = document.getElementById("budget-left").dataset.left;
  const videosLeft = document.getElementById("videos-left").dataset.left;
  let image = null; // { width, height, type, url }
  let blockReason = "";

  function fill(select, values, preferred, label) {
    const keep = preferred && values.includes(preferred) ? preferred : null;
    select.replaceChildren(...values.map((value) => {
      const option = document.createElement("option");
      option.value = value;
      option.textContent = label(value);
      return option;
    }));
    if (keep) select.value = keep;
  }

  function pickModel(first) {
    const spec = byName.get(model.value);
    if (!spec) return;
    const sizeWanted = first ? size.dataset.chosen || spec.default_size : size.value || spec.default_size;
    const secondsWanted = first ? seconds.dataset.chosen || spec.default_seconds : seconds.value || spec.default_seconds;
    fill(size, spec.sizes, spec.sizes.includes(sizeWanted) ? sizeWanted : spec.default_size, (s) => {
      const [w, h] = s.split("x");
      return `${w}×${h} ${Number(w) >= Number(h) ? "landscape" : "portrait"}`;
    });
    fill(seconds, spec.seconds, spec.seconds.includes(secondsWanted) ? secondsWanted : spec.default_seconds, (s) => `${s} seconds`);
    description.textContent = spec.description;
    file.disabled = !spec.image_input;
    checkReference();
    refresh();
  }

  function count() {
    const length = prompt.value.length;
    counter.textContent = `${length} / ${max}`;
    counter.classList.toggle("near", length > max * 0.9 && length <= max);
    counter.classList.toggle("over", length > max);
    const slot = form.querySelector('[data-error="prompt"]');
    if (length > max) slot.textContent = `${length - max} characters over the limit of ${max}.`;
    else if (slot.textContent.includes("over the limit")) slot.textContent = "";
  }

  function checkReference() {
    referenceError.textContent = "";
    if (!image) return true;
    const [w, h] = size.value.split("x").map(Number);
    if (!TYPES.has(image.type)) {
      referenceError.textContent = `That file is ${image.type || "not an image"}; use a JPEG, PNG or WebP image.`;
      return false;
    }
    if (image.width !== w || image.height !== h) {
      const fits = byName.get(model.value).sizes.find((s) => s === `${image.width}x${image.height}`);
      referenceError.textContent = `This image is ${image.width}×${image.height}, but the video is ${w}×${h}: `
        + (fits ? `choose the ${image.width}×${image.height} size, or ` : "")
        + `use an image of exactly ${w}×${h}.`;
      return false;
    }
    return true;
  }

  function block() {
    blockReason = "";
    const spec = byName.get(model.value);
    const local = spec ? Number(spec.price_per_second[size.value] || 0) * Number(seconds.value) : 0;
    if (videosLeft !== "" && Number(videosLeft) <= 0) blockReason = "You have no videos left this period.";
    else if (budgetLeft !== "" && local > Number(budgetLeft)) blockReason = `This costs ${money(local)}, more than the ${money(budgetLeft)} left in your budget.`;
    else if (prompt.value.length > max) blockReason = "The prompt is too long.";
    else if (!checkReference()) blockReason = "The reference image doesn't fit.";
    note.textContent = blockReason;
    submit.disabled = Boolean(blockReason);
    return local;
  }

  let timer;
  let asked = 0;
  function refresh() {
    const local = block();
    estimate.textContent = money(local);
    estimateDetail.textContent = `${seconds.value} s at ${size.value} on ${model.value}`;
    clearTimeout(timer);
    if (!prompt.value.trim() || prompt.value.length > max) return;
    timer = setTimeout(async () => {
      const ticket = ++asked;
      try {
        const answer = await api("POST", "/api/videos/estimate", {
          prompt: prompt.value, model: model.value, size: size.value, seconds: seconds.value,
        });
        if (ticket !== asked) return;
        estimate.textContent = money(answer.data.cost);
        estimateDetail.textContent = `${answer.data.seconds} s at ${answer.data.size} on ${answer.data.model} (${answer.data.provider})`;
      } catch (error) {
        if (ticket === asked && error.field) showErrors(form, error);
      }
    }, 250);
  }

  function loadImage(chosen) {
    if (image) URL.revokeObjectURL(image.url);
    image = null;
    preview.hidden = true;
    clear.hidden = true;
    info.textContent = "";
    if (!chosen) { refresh(); return; }
    const url = URL.createObjectURL(chosen);
    const probe = new Image();
    probe.onload = () => {
      image = { width: probe.naturalWidth, height: probe.naturalHeight, type: chosen.type, url };
      preview.src = url;
      preview.hidden = false;
      clear.hidden = false;
      info.textContent = `${chosen.name} · ${image.width}×${image.height} · ${Math.round(chosen.size / 1024)} KB`;
      refresh();
    };
    probe.onerror = () => {
      image = { width: 0, height: 0, type: chosen.type && TYPES.has(chosen.type) ? "a broken image" : chosen.type, url };
      referenceError.textContent = "That file can't be read as an image; use a JPEG, PNG or WebP image.";
      clear.hidden = false;
      refresh();
    };
    probe.src = url;
  }

  prompt.addEventListener("input", () => { count(); refresh(); });
  model.addEventListener("change", () => pickModel(false));
  size.addEventListener("change", refresh);
  seconds.addEventListener("change", refresh);
  file.addEventListener("change", () => loadImage(file.files[0]));
  clear.addEventListener("click", () => { file.value = ""; loadImage(null); });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (!prompt.value.trim()) return showErrors(form, { field: "prompt", message: "Describe the video you want." });
    block();
    if (blockReason) return;
    const body = new FormData();
    body.set("prompt", prompt.value);
    body.set("model", model.value);
    body.set("size", size.value);
    body.set("seconds", seconds.value);
    if (image && file.files[0]) body.set("input_reference", file.files[0]);
    submit.disabled = true;
    note.textContent = "Sending…";
    try {
      const created = await api("POST", "/api/videos", body);
      window.location.assign(`/videos/${encodeURIComponent(created.data.id)}`);
    } catch (error) {
      note.textContent = "";
      submit.disabled = false;
      showErrors(form, error);
    }
  });

  pickModel(true);
  count();
}
