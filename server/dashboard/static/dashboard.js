// igym dashboard: one WebSocket (/dashboard/live) sends the study once, then what changed each
// second; this script keeps that state and redraws the page from it. No framework. Every
// string that comes from the server is put in the page as text (textContent / Text nodes),
// never as HTML: participant ids are chosen by clients.
"use strict";

(() => {
  const KEEP_EVENTS = 50;
  const KEEP_POINTS = 600;
  const MAX_ROWS = 300;        // participants drawn at once (active first); the filter finds the rest
  const $ = (id) => document.getElementById(id);

  let snap = null;             // the latest snapshot (participants as a Map)
  let offset = 0;              // server time − this computer's time, seconds
  let lastMessage = 0;
  const hist = {t: [], p50: [], p99: [], rows: []};
  let charts = null;

  // --- small helpers -----------------------------------------------------------------------------

  function el(tag, cls, ...children) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));  // strings become Text nodes
    }
    return node;
  }
  const now = () => Date.now() / 1000 + offset;
  function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "–";
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return `${s} s`;
    const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = String(s % 60).padStart(2, "0");
    return h ? `${h}:${String(m).padStart(2, "0")}:${r}` : `${m}:${r}`;
  }
  const since = (t) => (t ? duration(now() - t) : "–");
  function bytes(n) {
    if (n === null || n === undefined) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
    return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
  }
  const ms = (v) => (v === null || v === undefined ? "–" : v < 10 ? v.toFixed(2) : v.toFixed(1));
  const clock = (t) => new Date((t - offset) * 1000).toLocaleTimeString([], {hour12: false});
  const chip = (text, tone) => el("span", `chip ${tone || ""}`, text);
  function setText(id, text) { const node = $(id); if (node.textContent !== text) node.textContent = text; }

  // --- the state ---------------------------------------------------------------------------------

  function full(message) {
    snap = message.snapshot;
    snap.participants = new Map(Object.entries(snap.participants));
    const h = message.history || {};
    hist.t = h.t || []; hist.p50 = h.p50_ms || []; hist.p99 = h.p99_ms || []; hist.rows = h.records_per_s || [];
  }

  function apply(message) {
    for (const [key, value] of Object.entries(message.set)) {
      if (key !== "participants" && key !== "events") snap[key] = value;
    }
    for (const id of message.participants.del) snap.participants.delete(id);
    for (const [id, row] of Object.entries(message.participants.set)) snap.participants.set(id, row);
    if (message.events.length) snap.events = snap.events.concat(message.events).slice(-KEEP_EVENTS);
    const p = message.point;
    if (p) {
      hist.t.push(p.t); hist.p50.push(p.p50_ms); hist.p99.push(p.p99_ms); hist.rows.push(p.records_per_s);
      for (const key of Object.keys(hist)) if (hist[key].length > KEEP_POINTS) hist[key].splice(0, hist[key].length - KEEP_POINTS);
    }
  }

  // --- drawing -----------------------------------------------------------------------------------

  function render() {
    if (!snap) return;
    offset = snap.time - Date.now() / 1000;
    renderHeader();
    renderTiles();
    renderFunnel();
    renderRooms();
    renderLobbies();
    renderPeople();
    renderEvents();
    renderCharts();
  }

  function renderHeader() {
    setText("experiment", snap.experiment);
    document.title = `igym · ${snap.experiment}`;
    const w = snap.worker;
    const who = w.workers ? `${w.workers.length} workers` : `worker ${w.id}`;
    setText("worker", `${who} · up ${duration(now() - w.started)}`);
  }

  function renderTiles() {
    const c = snap.counts, st = snap.statuses, lat = snap.lateness, sto = snap.storage;
    setText("t-connected", String(c.connected));
    setText("t-known", `of ${c.known} known` + (c.uploading ? ` · ${c.uploading} uploading` : ""));
    setText("t-waiting", String(c.waiting));
    let longest = null;
    for (const lobby of snap.lobbies) for (const w of lobby.waiting) longest = longest === null ? w.since : Math.min(longest, w.since);
    setText("t-longest", longest === null ? "nobody waiting" : `longest ${since(longest)}`);
    setText("t-rooms", String(c.rooms));
    const players = snap.rooms.reduce((n, r) => n + r.members.length, 0);
    setText("t-roomsub", c.rooms ? `${players} people playing` : "none running");
    setText("t-completed", String(st.completed || 0));
    setText("t-codes", `${snap.codes_issued} completion codes`);
    setText("t-declined", String(st.declined || 0));
    setText("t-aborted", String(st.aborted || 0));
    setText("t-dropped", "left or dropped out");
    setText("t-p99", lat.p99_ms === null ? "–" : `${ms(lat.p99_ms)} ms`);
    setText("t-p50", lat.ticks ? `p50 ${ms(lat.p50_ms)} ms` : "no room ticking");
    $("t-p99").parentElement.title = lat.ticks ? `the rooms' clock over the last second: ${lat.ticks} ticks, max ${ms(lat.max_ms)} ms` : "";
    const tile = $("t-rows").parentElement;
    if (!sto.alive) {
      setText("t-rows", "stopped"); tile.className = "tile bad";
      setText("t-size", "the storage thread is not running");
    } else {
      const age = now() - sto.last_commit;
      setText("t-rows", `${sto.records_per_s === null ? "–" : Math.round(sto.records_per_s)} /s`);
      tile.className = age > 5 ? "tile warn" : "tile";
      setText("t-size", age > 5 ? `last commit ${duration(age)} ago` : `${bytes(sto.data_bytes)} on disk`);
      tile.title = `${sto.records_written} records written since start${sto.data_path ? " to " + sto.data_path : ""}`;
    }
  }

  function bar(fraction, cls) {
    const track = el("div", "track");
    const fill = el("div", cls);
    fill.style.width = `${Math.round(Math.max(0, Math.min(1, fraction)) * 1000) / 10}%`;
    track.append(fill);
    return track;
  }

  function renderFunnel() {
    const box = $("funnel");
    const total = Object.values(snap.statuses).reduce((a, b) => a + b, 0);
    const rows = [];
    for (const step of snap.funnel) {
      const name = el("div", "name", step.scene, step.kind !== step.scene ? el("span", "kind", step.kind) : null);
      name.title = `${step.scene} (${step.kind})`;
      const track = bar(total ? step.reached / total : 0, "reached");
      const here = el("div", "now");
      here.style.width = `${total ? Math.round((step.now / total) * 1000) / 10 : 0}%`;
      track.append(here);
      rows.push(name, track, el("div", "count", el("b", null, step.reached), ` · ${step.now} here`));
    }
    if (!rows.length) rows.push(el("div", "empty", "no scenes"));
    box.replaceChildren(...rows);

    const labels = {started: "in progress", completed: "completed", declined: "declined", aborted: "aborted"};
    const sb = [];
    for (const [status, label] of Object.entries(labels)) {
      const n = snap.statuses[status] || 0;
      sb.push(el("span", null, label), bar(total ? n / total : 0, `fill ${status}`), el("span", "n", n));
    }
    $("statuses").replaceChildren(...sb);

    const conditions = Object.entries(snap.conditions);
    const cmax = Math.max(1, ...conditions.map(([, n]) => n));
    const cb = [];
    for (const [name, n] of conditions) cb.push(el("span", "pid", name), bar(n / cmax, "fill"), el("span", "n", n));
    $("conditions").replaceChildren(...(cb.length ? cb : [el("span", "empty", "no conditions")]));
  }

  function focusChip(focus) {
    if (focus === null || focus === undefined) return null;
    return focus ? chip("focus", "good") : chip("no focus", "warn");
  }

  function renderRooms() {
    const body = $("rooms").tBodies[0];
    const rows = [];
    for (const room of snap.rooms) {
      const members = el("div");
      for (const m of room.members) {
        const rtt = m.rtt_ms === null || m.rtt_ms === undefined ? "–" : `${Math.round(m.rtt_ms)} ms`;
        members.append(el("span", "member", el("span", "pid", m.participant), el("span", "seat", m.seat),
                          m.present ? el("span", "num", rtt) : chip("away", "bad"), m.present ? focusChip(m.focus) : null));
      }
      const episode = room.episode === null || room.episode === undefined ? "–" : room.episode + 1;
      const progress = el("td", "num", `${episode}${room.episodes ? "/" + room.episodes : ""} · `,
                          el("span", "room-step", room.step), room.paused ? chip("paused", "warn") : null);
      const lockstep = room.network === "lockstep"
        ? el("td", "num", `delay ${room.input_delay ?? "–"} · `, el("span", room.stalls ? "chip warn" : "", `${room.stalls} stalls`),
             " · ", el("span", room.desyncs ? "chip bad" : "", `${room.desyncs} desyncs`))
        : el("td", "muted", "–");
      const tr = el("tr", "room",
        el("td", "num", `#${room.room}`, room.worker ? el("div", "muted", room.worker) : null),
        el("td", null, el("div", "room-game", room.game), el("div", "muted", room.network)),
        progress, el("td", "num", since(room.started)), el("td", null, members), lockstep);
      tr.dataset.room = String(room.room);
      rows.push(tr);
    }
    if (!rows.length) {
      const td = el("td", "empty", "No room is running.");
      td.colSpan = 6;
      rows.push(el("tr", null, td));
    }
    body.replaceChildren(...rows);
    setText("rooms-note", snap.rooms.length ? `${snap.rooms.length} running` : "");
  }

  function renderLobbies() {
    const items = [];
    for (const lobby of snap.lobbies) {
      const line = el("div", "lobby", el("span", "game", lobby.game),
                      el("span", "muted", `${lobby.waiting.length} waiting for ${lobby.seats} seats · timeout ${duration(lobby.timeout_s)}`));
      for (const w of lobby.waiting) {
        line.append(el("span", `chip ${w.present ? "accent" : "warn"}`, el("span", "pid", w.participant),
                       ` ${since(w.since)}${w.present ? "" : " (away)"}`));
      }
      items.push(line);
    }
    $("lobbies").replaceChildren(...(items.length ? items : [el("div", "empty", "No lobby yet.")]));
  }

  const ORDER = {room: 0, lobby: 1, page: 2, "": 3, upload: 4, away: 5, done: 6};
  const STATUS_TONE = {started: "accent", completed: "good", declined: "warn", aborted: "bad"};

  function renderPeople() {
    const filter = $("filter").value.trim().toLowerCase();
    const all = [...snap.participants.entries()];
    const shown = all.filter(([id, p]) => !filter || [id, p.status, p.scene, p.condition, p.where, p.code]
      .some((v) => v && String(v).toLowerCase().includes(filter)));
    shown.sort((a, b) => (ORDER[a[1].where] ?? 3) - (ORDER[b[1].where] ?? 3) || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const rows = shown.slice(0, MAX_ROWS).map(([id, p]) => {
      const scene = !p.scene ? el("td", "muted", "–")
        : p.of ? el("td", null, p.scene, el("span", "muted", ` ${p.position + 1}/${p.of}`)) : el("td", null, p.scene);
      const where = p.where === "room" && p.room ? `room #${p.room}` : p.where === "away" ? "away (parked)"
        : p.where || "between scenes";
      const connection = p.connected ? el("td", "dot good", "connected")
        : p.where === "done" ? el("td", "muted", "left (done)") : el("td", "dot bad", `away ${since(p.away_since)}`);
      const focus = p.focus === null || !p.connected ? el("td", "muted", "–")
        : p.focus ? el("td", null, chip("focus", "good")) : el("td", null, chip(`away ${since(p.focus_since)}`, "warn"));
      const tr = el("tr", "participant",
        el("td", "pid", id), el("td", null, p.status ? chip(p.status, STATUS_TONE[p.status]) : "–"),
        el("td", null, p.condition || "–"), scene, el("td", null, where),
        el("td", "num", p.where === "done" || !p.since ? "–" : since(p.since)), connection, focus,
        el("td", "mono", p.code || ""));
      tr.dataset.participant = id;  // a data attribute, set as a property: never parsed as HTML
      return tr;
    });
    if (!rows.length) {
      const td = el("td", "empty", all.length ? "Nobody matches the filter." : "Nobody has connected yet.");
      td.colSpan = 9;
      rows.push(el("tr", null, td));
    }
    $("people").tBodies[0].replaceChildren(...rows);
    const drawn = Math.min(shown.length, MAX_ROWS);
    setText("people-note", (filter ? `${shown.length} of ${all.length}` : `${all.length}`)
            + (drawn < shown.length ? ` · showing ${drawn}: filter to find others` : ""));
  }

  const EVENT_TONE = {disconnect: "warn", page_abandoned: "bad", aborted: "bad", declined: "warn", rejected: "bad",
                      turned_away: "warn", desync: "bad", lockstep_disconnect: "warn", completed: "good",
                      connect: "accent", joined: "accent", resync: "warn"};

  function renderEvents() {
    const items = [];
    for (let i = snap.events.length - 1; i >= 0; i -= 1) {
      const e = snap.events[i];
      let tone = EVENT_TONE[e.kind] || "";
      const who = e.participant && snap.participants.get(e.participant);
      if (e.kind === "disconnect" && who && who.where === "done" && who.status === "completed") tone = "";  // a normal goodbye
      if (e.kind === "scene_outcome" && !/: played$/.test(e.text)) tone = "warn";
      if (e.kind === "lobby_left" && !/: (matched|filled)/.test(e.text)) tone = "warn";
      items.push(el("li", "event", el("span", "time", clock(e.t)), chip(e.kind.replace(/_/g, " "), tone),
                    el("span", "who pid", e.participant || "server"), el("span", "text", e.text)));
    }
    $("events").replaceChildren(...(items.length ? items : [el("li", "empty", "Nothing yet.")]));
  }

  // --- charts (uPlot) ------------------------------------------------------------------------------

  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }

  function makeChart(box, series, data) {
    const text = css("--muted"), grid = css("--border");
    const axis = {stroke: text, grid: {stroke: grid, width: 1}, ticks: {stroke: grid, width: 1}, font: "11px system-ui, sans-serif"};
    const opts = {
      width: Math.max(200, box.clientWidth), height: 170, legend: {live: false},
      cursor: {drag: {x: false, y: false}},
      scales: {x: {time: true}, y: {range: (u, min, max) => [0, Math.max(1, (max || 0) * 1.15)]}},
      axes: [axis, {...axis, size: 46}],
      series: [{}, ...series],
    };
    box.replaceChildren();
    return new uPlot(opts, data, box);
  }

  function buildCharts() {
    if (typeof uPlot === "undefined") return null;
    const accent = css("--accent"), bad = css("--bad"), soft = css("--accent-soft");
    const lat = $("chart-lateness"), rows = $("chart-rows");
    return {
      lateness: makeChart(lat, [
        {label: "p50 ms", stroke: accent, width: 1.5, value: (u, v) => (v === null ? "–" : ms(v))},
        {label: "p99 ms", stroke: bad, width: 1.5, value: (u, v) => (v === null ? "–" : ms(v))},
      ], [hist.t, hist.p50, hist.p99]),
      rows: makeChart(rows, [
        {label: "records/s", stroke: accent, fill: soft, width: 1.5, value: (u, v) => (v === null ? "–" : Math.round(v))},
      ], [hist.t, hist.rows]),
    };
  }

  function renderCharts() {
    if (!charts) charts = buildCharts();
    if (!charts) return;
    charts.lateness.setData([hist.t, hist.p50, hist.p99]);
    charts.rows.setData([hist.t, hist.rows]);
  }

  function rebuildCharts() {
    if (charts) { charts.lateness.destroy(); charts.rows.destroy(); }
    charts = null;
    if (snap) renderCharts();
  }

  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", rebuildCharts);
  let resizeTimer = null;
  new ResizeObserver(() => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      if (!charts) return;
      for (const [chart, id] of [[charts.lateness, "chart-lateness"], [charts.rows, "chart-rows"]]) {
        chart.setSize({width: Math.max(200, $(id).clientWidth), height: 170});
      }
    }, 100);
  }).observe(document.querySelector(".grid"));

  // --- the live connection -----------------------------------------------------------------------

  function setLive(on, text) {
    const live = $("live");
    live.className = `live ${on ? "on" : "off"}`;
    live.textContent = text;
  }

  let retry = 0;
  function connect() {
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/dashboard/live`);
    ws.onmessage = (event) => {
      const message = JSON.parse(event.data);
      if (message.type === "full") full(message);
      else if (message.type === "delta" && snap) apply(message);
      else return;
      retry = 0;
      lastMessage = Date.now();
      render();
      setLive(true, "live");
    };
    ws.onclose = (event) => {
      if (event.code === 1008) {  // the server refused: no session (expired, logged out elsewhere)
        setLive(false, "logged out");
        location.replace("/");
        return;
      }
      setLive(false, "reconnecting…");
      setTimeout(connect, Math.min(10000, 500 * 2 ** retry));
      retry += 1;
    };
  }

  $("filter").addEventListener("input", () => snap && renderPeople());
  setInterval(() => {
    if (lastMessage && Date.now() - lastMessage > 3500) setLive(false, `no news for ${duration((Date.now() - lastMessage) / 1000)}`);
  }, 1000);
  connect();
})();
