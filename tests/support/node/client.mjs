// socket.io clients as the guide's front end uses them, driven over stdin/stdout (JSON lines).
// In:  {"op": "connect", "name": "a", "url": "http://...", "options": {...}}  (socket.io-client options)
//      {"op": "subscribe" | "unsubscribe", "name": "a", "id": "video_..."}
//      {"op": "close", "name": "a"}
// Out: {"name": "a", "event": "connect" | "connect_error" | "disconnect" | "video:update",
//       "data": ..., "at": wall-clock milliseconds when it arrived}
import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";
import { io } from "socket.io-client";

const sockets = new Map();
const now = () => performance.timeOrigin + performance.now();
const out = (name, event, data) =>
  process.stdout.write(JSON.stringify({ name, event, data, at: now() }) + "\n");

function connect({ name, url, options }) {
  const socket = io(url, { reconnection: false, forceNew: true, ...options });
  sockets.set(name, socket);
  socket.on("connect", () => out(name, "connect"));
  socket.on("connect_error", (error) => out(name, "connect_error", error.message));
  socket.on("disconnect", (reason) => out(name, "disconnect", reason));
  socket.on("video:update", (update) => out(name, "video:update", update));
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const command = JSON.parse(line);
  const socket = sockets.get(command.name);
  switch (command.op) {
    case "connect":
      connect(command);
      break;
    case "subscribe":
      socket.emit("subscribe:video", command.id);
      break;
    case "unsubscribe":
      socket.emit("unsubscribe:video", command.id);
      break;
    case "close":
      socket.close();
      break;
  }
});
lines.on("close", () => {
  for (const socket of sockets.values()) socket.close();
  process.exit(0);
});
out(null, "ready");
