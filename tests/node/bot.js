#!/usr/bin/env node
// A stand-in Wechaty bot for tests/reliability/test_rotation_real.py: it prints given log lines
// the way a node bot's logger does, and keeps its own record of what it wrote.
//
//   node bot.js --lines LINES.json --control DIR --rate N [--out PATH --mode keep-open|reopen]
//
// LINES.json is a JSON array of lines (without newlines), written in order at about N lines a
// second, in batches every 10 ms.
// Without --out the lines go to stdout (under pm2, whose daemon writes them to the log file).
// With --out and --mode keep-open the bot opens PATH once and reopens it on SIGHUP, as a node
// logger told to by logrotate's postrotate; with --mode reopen it opens PATH for every line.
//
// The control directory is how the test steers it and reads its record:
//   pid            its process id (for logrotate's postrotate: kill -HUP)
//   hold           while this file exists the bot writes nothing; the first time it sees a
//                  hold with a new content it answers with held-<content>: {"written": n}
//   done           {"written": n} once every line is written (then the bot exits 0)
"use strict";

const fs = require("fs");
const path = require("path");

function parseArgs(argv) {
  const args = { mode: "stdout", rate: 1000 };
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, "");
    args[key] = argv[i + 1];
  }
  if (!args.lines || !args.control) {
    throw new Error("usage: bot.js --lines FILE --control DIR [--rate N] [--out PATH --mode M]");
  }
  args.rate = Number(args.rate);
  return args;
}

const args = parseArgs(process.argv.slice(2));
const lines = JSON.parse(fs.readFileSync(args.lines, "utf8"));
const control = args.control;
const TICK_MS = 10;
const perTick = Math.max(1, Math.round((args.rate * TICK_MS) / 1000));

function record(name, doc) {
  // Atomic: the test never reads half a record.
  const tmp = path.join(control, `.${name}.tmp`);
  fs.writeFileSync(tmp, JSON.stringify(doc));
  fs.renameSync(tmp, path.join(control, name));
}

let fd = null;
if (args.out && args.mode === "keep-open") {
  fd = fs.openSync(args.out, "a");
  process.on("SIGHUP", () => {
    // What a logger does when logrotate's postrotate tells it its file moved.
    fs.closeSync(fd);
    fd = fs.openSync(args.out, "a");
  });
} else {
  process.on("SIGHUP", () => {}); // nothing to reopen; do not die of it
}

function emit(line) {
  const data = line + "\n";
  if (!args.out) {
    process.stdout.write(data); // synchronous for files and pipes on Linux
  } else if (fd !== null) {
    fs.writeSync(fd, data);
  } else {
    fs.appendFileSync(args.out, data); // open, append, close: a logger that reopens per line
  }
}

let written = 0;
let answered = null;
const started = Date.now();
let ticks = 0;

function held() {
  let token;
  try {
    token = fs.readFileSync(path.join(control, "hold"), "utf8");
  } catch (e) {
    return false;
  }
  if (token !== answered) {
    answered = token;
    record(`held-${token}`, { written });
  }
  return true;
}

// QRCodeTerminal prints its status line and its URL line from one event handler, in one tick:
// no signal handler (the SIGHUP reopen) and no other writer's turn can fall between them. The
// bot writes such a pair with one write, as a real node process ends up doing.
const PAIR_FIRST = "QRCodeTerminal Login QR Code Status: ";
const PAIR_SECOND = "QR Code Image URL: ";

function tick() {
  if (!held()) {
    const until = Math.min(lines.length, written + perTick);
    while (written < until) {
      const next = lines[written + 1];
      if (lines[written].includes(PAIR_FIRST) && next !== undefined && next.includes(PAIR_SECOND)) {
        emit(lines[written] + "\n" + next);
        written += 2;
      } else {
        emit(lines[written]);
        written += 1;
      }
    }
  }
  if (written >= lines.length) {
    if (fd !== null) fs.closeSync(fd);
    record("done", { written, seconds: (Date.now() - started) / 1000 });
    return; // nothing keeps the loop alive now: exit 0
  }
  ticks += 1;
  setTimeout(tick, Math.max(0, started + ticks * TICK_MS - Date.now()));
}

fs.writeFileSync(path.join(control, "pid"), String(process.pid));
tick();
