// A video's page: live progress until it finishes, then the player; remix, cancel, delete.
import { api, clearErrors, showErrors, toast } from "./api.js";
import { Eta, isFinished, watch } from "./live.js";

const LABELS = { queued: "Queued", in_progress: "Rendering", completed: "Ready", failed: "Failed", cancelled: "Cancelled" };

function money(value) {
  return `$${Number(value).toFixed(2)}`;
}

function el(tag, props = {}, text = "") {
  const node = document.createElement(tag);
  Object.assign(node, props);
  if (text) node.textContent = text;
  return node;
}

async function refreshTimeline(id) {
  try {
    const events = await api("GET", `/api/videos/${encodeURIComponent(id)}/events`);
    const list = document.getElementById("timeline");
    const format = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
    list.replaceChildren(...events.data.map((event) => {
      const item = el("li", { className: event.kind });
      item.append(el("div", { className: "what" }, event.kind.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase())));
      item.append(el("div", { className: "when" }, format.format(new Date(event.created_at * 1000))));
      const pairs = Object.entries(event.data || {}).map(([k, v]) => `${k}=${typeof v === "object" ? JSON.stringify(v) : v}`);
      if (pairs.length) item.append(el("div", { className: "data" }, pairs.join(" · ")));
      return item;
    }));
  } catch {
    // The timeline is a nicety; the state itself is already shown.
  }
}

// What the vendor last said about the job: its place in the queue (the vendor counts from 0,
// people from 1) while it waits, its latest log line while it runs.
function showVendor(waiting, video) {
  const queue = waiting.querySelector('[data-role="queue"]');
  const message = waiting.querySelector('[data-role="vendor-message"]');
  const position = video.queue_position;
  if (queue) {
    queue.hidden = position == null;
    queue.textContent = position == null ? "" : `In queue, position ${position + 1}`;
  }
  if (message) {
    message.hidden = !video.vendor_message;
    message.textContent = video.vendor_message || "";
  }
}

function render(root, video, eta) {
  const previous = root.dataset.status;
  root.dataset.status = video.status;
  root.dataset.progress = String(video.progress);
  for (const pill of root.querySelectorAll('.page-head [data-role="status"], .tree .node.current [data-role="status"]')) {
    pill.className = `pill ${video.status}`;
    pill.textContent = LABELS[video.status] || video.status;
  }
  const statusText = root.querySelector('[data-role="status-text"]');
  if (statusText) statusText.textContent = LABELS[video.status] || video.status;
  const cost = root.querySelector('[data-role="cost"]');
  if (cost && video.cost) {
    cost.textContent = video.cost.final != null ? money(video.cost.final) : `${money(video.cost.estimate)} estimated`;
  }
  const waiting = document.getElementById("waiting");
  if (waiting) {
    const bar = waiting.querySelector('[data-role="progress"]');
    const big = waiting.querySelector('[data-role="progress-text"]');
    const state = waiting.querySelector('[data-role="state-text"]');
    const etaText = waiting.querySelector('[data-role="eta"]');
    if (bar) bar.value = video.progress;
    showVendor(waiting, isFinished(video) ? {} : video);
    if (!isFinished(video)) {
      big.textContent = `${video.progress} %`;
      state.textContent = video.status === "queued" ? "Waiting for a render slot…" : "Rendering…";
      etaText.textContent = video.status === "in_progress" ? eta.update(video.progress) : "";
    } else if (video.status === "failed") {
      waiting.classList.add("failed");
      big.textContent = (video.error && video.error.message) || "Generation failed";
      state.textContent = (video.error && video.error.code) || "failed";
      etaText.textContent = "";
      if (bar) bar.remove();
    } else if (video.status === "cancelled") {
      big.textContent = "Cancelled";
      state.textContent = "This video was cancelled before it finished.";
      etaText.textContent = "";
      if (bar) bar.remove();
    }
  }
  if (video.status === "completed" && previous !== "completed") {
    const stage = document.getElementById("stage");
    const player = el("video", { id: "player", controls: true, preload: "metadata", playsInline: true });
    if (video.downloads.thumbnail) player.poster = video.downloads.thumbnail;
    player.src = video.downloads.video;
    stage.replaceChildren(player);
    const downloads = document.getElementById("downloads");
    for (const link of downloads.querySelectorAll("[data-variant]")) {
      link.hidden = !video.downloads[link.dataset.variant];
    }
    downloads.hidden = false;
  }
  if (isFinished(video)) {
    const cancel = root.querySelector('[data-action="cancel"]');
    if (cancel) cancel.hidden = true;
    const remix = root.querySelector('[data-action="remix"]');
    if (remix) remix.hidden = video.status !== "completed";
    if (previous !== video.status) refreshTimeline(video.id);
  }
}

export function start() {
  const root = document.getElementById("video-root");
  const video = JSON.parse(document.getElementById("video-data").textContent);
  const id = video.id;
  const eta = new Eta();
  if (!isFinished(video)) {
    watch([id], (update) => { if (update.id === id) render(root, update, eta); }, {
      streamUrl: `/api/videos/${encodeURIComponent(id)}/stream`,
    });
  }

  const dialog = document.getElementById("remix-dialog");
  const remixForm = document.getElementById("remix-form");
  root.querySelector('[data-action="remix"]').addEventListener("click", () => {
    clearErrors(remixForm);
    dialog.showModal();
  });
  dialog.querySelector('[data-action="close-dialog"]').addEventListener("click", () => dialog.close());
  remixForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors(remixForm);
    const prompt = remixForm.elements.prompt.value;
    if (!prompt.trim()) return showErrors(remixForm, { field: "prompt", message: "Say what should change." });
    try {
      const remix = await api("POST", `/api/videos/${encodeURIComponent(id)}/remix`, { prompt });
      window.location.assign(`/videos/${encodeURIComponent(remix.data.id)}`);
    } catch (error) {
      showErrors(remixForm, error);
    }
  });

  root.querySelector('[data-action="cancel"]').addEventListener("click", async (event) => {
    event.currentTarget.disabled = true;
    try {
      const answer = await api("POST", `/api/videos/${encodeURIComponent(id)}/cancel`);
      render(root, answer.data, eta);
      toast("Cancelled.");
    } catch (error) {
      toast(error.message);
      event.currentTarget.disabled = false;
    }
  });

  root.querySelector('[data-action="delete"]').addEventListener("click", async () => {
    if (!window.confirm("Delete this video and its files for good?")) return;
    try {
      await api("DELETE", `/api/videos/${encodeURIComponent(id)}`);
      window.location.assign("/");
    } catch (error) {
      toast(error.message);
    }
  });
}
