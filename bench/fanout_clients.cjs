// The load side of bench/fanout.py: many socket.io clients (the real socket.io-client, as the
// guide's front end) and many SSE clients (fetch, reading the stream as EventSource does) on one
// target, each noting the wall-clock time every update arrives. Driven over stdin/stdout (JSON
// lines); run with NODE_PATH pointing at tests/support/node/node_modules.
//
// In:  {"op": "open", "target": "bare", "url": ..., "sse": "/path", "n": 1000,
//       "token": "rf_...", "video": "video_..." | null}
//      {"op": "arm", "target": "bare"}: count the next update of every client (the next round)
//      {"op": "watch", "url": ..., "token": ..., "video": "video_..."}: one client follows it
// Out: {"target": t, "ready": true} once every client is connected (and has the first state)
//      {"target": t, "armed": true}
//      {"target": t, "sse": [ms...], "io": [ms...]} once every client got the round's update
//      {"target": t, "error": "..."} when a round is not complete within ROUND_SECONDS
//      {"video": id, "completed": ms} when a watched video's completed update arrives
const { io } = require("socket.io-client");
const { performance } = require("node:perf_hooks");
const { createInterface } = require("node:readline");

const now = () => performance.timeOrigin + performance.now();
const out = (message) => process.stdout.write(JSON.stringify(message) + "\n");
const targets = new Map();
const ROUND_SECONDS = 60;

function received(target, kind) {
  const at = now();
  if (!target.armed) {
    target.initial[kind] += 1;
    checkReady(target);
    return;
  }
  target.round[kind].push(at);
  if (target.round.sse.length === target.n && target.round.io.length === target.n) {
    target.armed = false;
    out({ target: target.name, sse: target.round.sse, io: target.round.io });
  }
}

function checkReady(target) {
  const want = target.video ? target.n : 0; // Reelforge sends the state on subscribe; bare nothing
  if (!target.ready && target.connected === 2 * target.n && target.initial.sse >= want &&
      target.initial.io >= want) {
    target.ready = true;
    out({ target: target.name, ready: true });
  }
}

async function openSse(target, url, headers) {
  const response = await fetch(url, { headers });
  if (response.status !== 200) throw new Error(`SSE ${response.status}: ${await response.text()}`);
  target.connected += 1;
  checkReady(target);
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of response.body) {
    buffered = (buffered + decoder.decode(chunk, { stream: true })).replace(/\r\n/g, "\n");
    let end;
    while ((end = buffered.indexOf("\n\n")) !== -1) {
      const block = buffered.slice(0, end);
      buffered = buffered.slice(end + 2);
      if (block.split("\n").some((line) => line.startsWith("data:"))) received(target, "sse");
    }
  }
}

function open(command) {
  const target = {
    name: command.target, n: command.n, video: command.video, connected: 0, ready: false,
    armed: false, initial: { sse: 0, io: 0 }, round: { sse: [], io: [] },
  };
  targets.set(command.target, target);
  const headers = command.token ? { Authorization: `Bearer ${command.token}` } : {};
  for (let i = 0; i < command.n; i++) {
    openSse(target, command.url + command.sse, headers).catch((error) => {
      out({ target: target.name, error: String(error) });
    });
    const socket = io(command.url, {
      transports: ["websocket"], forceNew: true, reconnection: false,
      auth: command.token ? { token: command.token } : undefined,
    });
    socket.on("connect", () => {
      target.connected += 1;
      if (command.video) socket.emit("subscribe:video", command.video);
      checkReady(target);
    });
    socket.on("connect_error", (error) => out({ target: target.name, error: error.message }));
    socket.on("video:update", () => received(target, "io"));
  }
}

function watch({ url, token, video }) {
  const socket = io(url, { transports: ["websocket"], forceNew: true, auth: { token } });
  socket.on("connect", () => socket.emit("subscribe:video", video));
  socket.on("connect_error", (error) => out({ video, error: error.message }));
  socket.on("video:update", (update) => {
    if (update.status === "completed") {
      out({ video, completed: now() });
      socket.close();
    } else if (update.status === "failed" || update.status === "cancelled") {
      out({ video, error: `ended ${update.status}` });
    }
  });
}

createInterface({ input: process.stdin }).on("line", (line) => {
  const command = JSON.parse(line);
  if (command.op === "open") open(command);
  if (command.op === "watch") watch(command);
  if (command.op === "arm") {
    const target = targets.get(command.target);
    target.round = { sse: [], io: [] };
    target.armed = true;
    out({ target: target.name, armed: true });
    // Pub/sub may drop an update: a round that can't finish says so instead of waiting forever.
    const round = target.round;
    setTimeout(() => {
      if (target.armed && target.round === round) {
        const got = `${round.sse.length} SSE and ${round.io.length} socket.io of ${target.n}`;
        out({ target: target.name, error: `round timed out after ${ROUND_SECONDS} s: ${got}` });
      }
    }, ROUND_SECONDS * 1000);
  }
}).on("close", () => process.exit(0));
