// The browser tracker (/contracts/{id}/track): works like the desktop agent, from a shared screen.
// One random moment in every slot (crypto.getRandomValues, the agent's margin rule), a frame drawn to a
// canvas and encoded as WebP, queued in IndexedDB until the server confirms it (201/200), sent through
// the agent's ingest endpoint with source "browser". Refusals are classified by their code like
// agent/uploader.py. No inline script: the pages' CSP allows only 'self'.
"use strict";

(() => {
  const root = document.getElementById("tracker");
  if (!root) return;
  const data = root.dataset;
  const contractId = data.contract;
  const csrf = data.csrf;
  const slotMs = Number(data.slotSeconds) * 1000;
  const marginMs = Math.min(1000, slotMs / 10); // agent/schedule.py: MAX_MARGIN, slot / 10
  const quality = Number(data.quality) / 100;
  const maxMemo = Number(data.maxMemo);
  const maxPixels = Number(data.maxPixels);
  const maxBytes = Number(data.maxBytes);
  const RETRYABLE_CODES = new Set(["unavailable", "rate_limited", "server_error"]);
  const RETRYABLE_STATUSES = new Set([408, 425, 429]);
  const SIGN_IN_CODES = new Set(["unauthorized", "token_missing", "token_unknown", "token_revoked",
    "token_expired", "account_disabled", "session_ended", "csrf_failed"]);
  const BIDI_OVERRIDES = /[\u202a-\u202e]/;

  const $ = (id) => document.getElementById(id);
  const ui = {
    state: $("state"), message: $("message"), start: $("start"), pause: $("pause"), resume: $("resume"),
    stop: $("stop"), memo: $("memo"), memoProblem: $("memo-problem"), next: $("next-slot"),
    week: $("week-total"), workView: $("work-view"), queued: $("queued"), lastBox: $("last-capture"),
    lastPreview: $("last-preview"), lastAt: $("last-at"), lastKind: $("last-kind"), lastMemo: $("last-memo"),
    deleteLast: $("delete-last"), refusedBox: $("refused-box"), refused: $("refused"), video: $("screen"),
  };

  let workViewOn = data.workView === "on";
  let stream = null;
  let track = null;
  let paused = false;
  let timer = null;
  let watchdog = null;
  let plan = null;
  let endedSlot = null; // the slot in which the share ended: nothing more is recorded in it
  let lastId = data.last || "";
  let signInNeeded = false;
  const canvas = document.createElement("canvas");
  const pending = document.createElement("canvas");
  pending.width = 320;
  pending.height = 180;
  let pendingId = "";
  const context2d = canvas.getContext("2d", { alpha: false });

  // --- time and randomness ------------------------------------------------------------------------

  function unitRandom() { // uniform in [0, 1) with 53 random bits from the CSPRNG
    const words = new Uint32Array(2);
    crypto.getRandomValues(words);
    return (words[0] * 2 ** 21 + (words[1] >>> 11)) / 2 ** 53;
  }

  function slotOf(at) { return Math.floor(at / slotMs) * slotMs; } // slots align to UTC (epoch) time

  function planFor(now) { // agent/schedule.py SlotScheduler.plan: a moment in [now, slot end - margin)
    const start = slotOf(now);
    const end = start + slotMs;
    const earliest = Math.max(start, now);
    const span = Math.max(0, end - marginMs - earliest);
    const moment = Math.min(earliest + unitRandom() * span, end - 1);
    return { start, end, moment: Math.max(moment, earliest) };
  }

  function hhmm(at) {
    return new Date(at).toISOString().slice(11, slotMs < 60000 ? 19 : 16);
  }

  function duration(minutes) {
    const h = Math.floor(minutes / 60), m = minutes % 60;
    if (h && m) return `${h} h ${m} min`;
    return h ? `${h} h` : `${m} min`;
  }

  function mondayOf(at) { // the UTC week's Monday, YYYY-MM-DD
    const day = new Date(at);
    const back = (day.getUTCDay() + 6) % 7;
    return new Date(Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate() - back))
      .toISOString().slice(0, 10);
  }

  // --- messages -----------------------------------------------------------------------------------

  function say(text) {
    ui.message.textContent = text;
    ui.message.hidden = !text;
  }

  function setState(text) { ui.state.textContent = text; }

  function showButtons() {
    const on = stream !== null;
    ui.start.hidden = on;
    ui.stop.hidden = !on;
    ui.pause.hidden = !on || paused;
    ui.resume.hidden = !on || !paused;
  }

  // --- the memo: the same rules as domain/text.py, for a quick message (the server decides) -------

  function memoProblem(value) {
    const text = value.normalize("NFC");
    const chars = [...text].length; // code points, as the server counts them (an emoji is one)
    if (chars > maxMemo) return `the memo is ${chars} characters; the limit is ${maxMemo}`;
    for (let i = 0; i < text.length; i++) {
      const code = text.charCodeAt(i);
      if (code >= 0xd800 && code <= 0xdbff) {
        const next = text.charCodeAt(i + 1);
        if (next >= 0xdc00 && next <= 0xdfff) { i++; continue; }
        return `the memo contains a lone surrogate U+${code.toString(16).toUpperCase()}`;
      }
      if (code >= 0xdc00 && code <= 0xdfff) return `the memo contains a lone surrogate U+${code.toString(16).toUpperCase()}`;
      if ((code < 0x20 && code !== 9 && code !== 10) || (code >= 0x7f && code <= 0x9f)) {
        return `the memo contains the control character U+${code.toString(16).toUpperCase().padStart(4, "0")}: remove it`;
      }
      if (BIDI_OVERRIDES.test(text[i])) {
        return `the memo contains the bidirectional override U+${code.toString(16).toUpperCase()}: remove it`;
      }
    }
    return "";
  }

  ui.memo.addEventListener("input", () => {
    const problem = memoProblem(ui.memo.value);
    ui.memoProblem.textContent = problem ? `${problem} (the server will refuse captures with it)` : "";
    ui.memoProblem.hidden = !problem;
  });

  // --- the queue: IndexedDB, one record per capture, kept until the server confirms it -------------

  const DB_NAME = "workproof-tracker";
  const STORE = "captures";
  let dbPromise = null;

  function db() {
    if (!dbPromise) {
      dbPromise = new Promise((resolve, reject) => {
        const request = indexedDB.open(DB_NAME, 1);
        request.onupgradeneeded = () => {
          const store = request.result.createObjectStore(STORE, { keyPath: "id" });
          store.createIndex("contract", "contract");
        };
        request.onsuccess = () => resolve(request.result);
        request.onerror = () => reject(request.error);
      });
    }
    return dbPromise;
  }

  async function tx(mode, work) {
    const database = await db();
    return new Promise((resolve, reject) => {
      const transaction = database.transaction(STORE, mode);
      const store = transaction.objectStore(STORE);
      let result;
      work(store, (value) => { result = value; });
      transaction.oncomplete = () => resolve(result);
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error);
    });
  }

  const putItem = (item) => tx("readwrite", (store) => store.put(item));
  const removeItem = (id) => tx("readwrite", (store) => store.delete(id));
  const contractItems = () => tx("readonly", (store, done) => {
    const request = store.index("contract").getAll(contractId);
    request.onsuccess = () => done(request.result.sort((a, b) => a.seq - b.seq));
  });

  let queuedCount = 0;

  async function refreshQueue() {
    const items = await contractItems();
    const waiting = items.filter((item) => item.status === "queued");
    queuedCount = waiting.length;
    ui.queued.textContent = String(queuedCount);
    ui.refused.replaceChildren(...items.filter((item) => item.status === "refused").map(refusedLine));
    ui.refusedBox.hidden = ui.refused.children.length === 0;
    return waiting;
  }

  function refusedLine(item) {
    const line = document.createElement("li");
    line.className = "refused-capture";
    line.dataset.capture = item.id;
    line.dataset.code = item.code || "";
    const when = document.createElement("time");
    when.textContent = item.meta.captured_at.replace("T", " ").slice(0, 19) + " UTC";
    const reason = document.createElement("span");
    reason.className = "reason";
    reason.textContent = ` ${item.reason}${item.code ? ` (${item.code})` : ""} `;
    const forget = document.createElement("button");
    forget.type = "button";
    forget.textContent = "Dismiss";
    forget.addEventListener("click", async () => { await removeItem(item.id); await refreshQueue(); });
    line.append(when, reason, forget);
    return line;
  }

  window.addEventListener("beforeunload", (event) => {
    if (queuedCount > 0) { // captures not yet confirmed: ask before the page goes
      event.preventDefault();
      event.returnValue = "";
    }
  });

  // --- sending: oldest first, one at a time, classified by the refusal's code ----------------------

  let draining = false;
  let retryTimer = null;
  let failures = 0;

  function backoffMs(retryAfterSeconds) { // full jitter, like agent/uploader.py's Backoff (1 s .. 5 min)
    const ceiling = Math.min(300000, 1000 * 2 ** Math.min(failures, 20));
    failures++;
    const delay = unitRandom() * ceiling;
    return retryAfterSeconds ? Math.max(delay, retryAfterSeconds * 1000) : delay;
  }

  function scheduleRetry(ms) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => { retryTimer = null; drain(true); }, ms);
  }

  async function send(item) {
    const body = new FormData();
    body.append("meta", JSON.stringify(item.meta));
    if (item.image) body.append("images", item.image, `${item.id}.webp`);
    let response;
    try {
      response = await fetch(`/v1/contracts/${contractId}/captures`, {
        method: "POST", body, credentials: "same-origin", headers: { "X-CSRF-Token": csrf },
      });
    } catch (error) {
      return { outcome: "retry", why: "the network is unreachable" };
    }
    let answer = {};
    try { answer = await response.json(); } catch (error) { answer = {}; }
    if (response.status === 201 || response.status === 200) return { outcome: "delivered", answer };
    const code = typeof answer.code === "string" ? answer.code : "";
    const detail = typeof answer.detail === "string" ? answer.detail : `the server answered ${response.status}`;
    const retryAfter = Number(response.headers.get("Retry-After")) || 0;
    if (RETRYABLE_CODES.has(code) || (!code && (RETRYABLE_STATUSES.has(response.status) || response.status >= 500))) {
      return { outcome: "retry", why: detail, retryAfter };
    }
    if (code === "work_view_off" && item.meta.kind === "screenshot") return { outcome: "as_tracked" };
    if (SIGN_IN_CODES.has(code) || response.status === 401) return { outcome: "sign_in", why: detail };
    return { outcome: "refused", why: detail, code };
  }

  async function drain(force = false) {
    // a pending retry is never brought forward by a new capture: only "online" (or a reload) may
    if (draining || signInNeeded || (retryTimer !== null && !force)) return;
    if (!navigator.locks) { await drainQueue(); return; }
    // one sender per contract across this browser's tabs: a second tracker tab waits its turn
    await navigator.locks.request(`workproof-tracker-send-${contractId}`, { ifAvailable: true }, async (lock) => {
      if (lock) await drainQueue();
      else scheduleRetry(2000 + unitRandom() * 3000);
    });
  }

  async function drainQueue() {
    if (draining) return;
    draining = true;
    try {
      for (;;) {
        const waiting = await refreshQueue();
        if (waiting.length === 0) break;
        const item = waiting[0];
        const result = await send(item);
        if (result.outcome === "delivered") {
          failures = 0;
          await removeItem(item.id);
          delivered(item, result.answer);
        } else if (result.outcome === "as_tracked") {
          // Work View was switched off: the image is destroyed unsent, the slot goes as tracked time
          workViewOn = false;
          showWorkView();
          await putItem({ ...item, image: null, meta: { ...item.meta, kind: "tracked" } });
        } else if (result.outcome === "sign_in") {
          signInNeeded = true;
          say(`Sign in again to send the ${waiting.length} waiting capture(s): ${result.why}. They stay in this browser.`);
          const link = document.createElement("a");
          link.href = `/login?next=${encodeURIComponent(location.pathname + location.search)}`;
          link.id = "sign-in";
          link.textContent = " Sign in";
          ui.message.append(link);
          break;
        } else if (result.outcome === "refused") {
          await putItem({ ...item, image: null, status: "refused", reason: result.why, code: result.code });
        } else {
          const wait = backoffMs(result.retryAfter);
          ui.queued.title = `not sent yet: ${result.why}; next try in ${Math.ceil(wait / 1000)} s`;
          scheduleRetry(wait);
          break;
        }
      }
    } finally {
      draining = false;
      await refreshQueue();
    }
  }

  window.addEventListener("online", () => {
    failures = 0;
    clearTimeout(retryTimer);
    retryTimer = null;
    drain(true);
  });

  function delivered(item, answer) {
    lastId = item.id;
    ui.lastBox.hidden = false;
    const image = $("last-image");
    if (image) image.remove();
    const preview = item.meta.kind === "screenshot" && item.id === pendingId;
    ui.lastPreview.hidden = !preview;
    if (preview) ui.lastPreview.getContext("2d").drawImage(pending, 0, 0);
    ui.lastAt.textContent = new Date(item.meta.captured_at).toLocaleString();
    ui.lastKind.textContent = item.meta.kind === "screenshot" ? "screenshot" : "tracked, no image";
    ui.lastMemo.textContent = answer.memo ?? item.meta.memo;
    ui.deleteLast.dataset.capture = item.id;
    root.dataset.last = item.id;
    refreshWeek();
  }

  async function refreshWeek() {
    try {
      const response = await fetch(`/v1/contracts/${contractId}/captures?week=${mondayOf(Date.now())}`,
        { credentials: "same-origin" });
      if (!response.ok) return;
      const page = await response.json();
      const slots = new Set(page.items.map((capture) => capture.slot_start));
      ui.week.textContent = duration(slots.size * 12);
      root.dataset.weekSlots = String(slots.size);
    } catch (error) { /* offline: the figure waits for the next delivery */ }
  }

  ui.deleteLast.addEventListener("click", async () => {
    const id = ui.deleteLast.dataset.capture || lastId;
    if (!id) return;
    let response;
    try {
      response = await fetch(`/v1/captures/${id}`, {
        method: "DELETE", credentials: "same-origin", headers: { "X-CSRF-Token": csrf },
      });
    } catch (error) { say("The capture was not deleted: the network is unreachable."); return; }
    if (response.status === 204) {
      say("The capture was deleted: its 12 minutes are no longer in the week.");
      ui.lastBox.hidden = true;
      lastId = "";
      root.dataset.last = "";
      refreshWeek();
    } else {
      let answer = {};
      try { answer = await response.json(); } catch (error) { answer = {}; }
      say(`The capture was not deleted: ${answer.detail || response.status}`);
    }
  });
  ui.deleteLast.dataset.capture = lastId;

  // --- capturing ----------------------------------------------------------------------------------

  let seq = Date.now() * 1000;

  async function refreshWorkView() { // the contract's Work View, best effort (offline: the last known)
    try {
      const response = await fetch(`/v1/contracts/${contractId}`, { credentials: "same-origin" });
      if (response.ok) workViewOn = Boolean((await response.json()).work_view_on);
    } catch (error) { /* keep the last known state */ }
    showWorkView();
  }

  function showWorkView() {
    root.dataset.workView = workViewOn ? "on" : "off";
    ui.workView.textContent = workViewOn ? "on: screenshots" : "off: tracked slots without an image";
  }

  function encode() {
    return new Promise((resolve) => canvas.toBlob(resolve, "image/webp", quality));
  }

  async function frame() { // the current frame of the shared screen as WebP, at its own size
    let width = ui.video.videoWidth, height = ui.video.videoHeight;
    if (!width || !height) throw new Error("the shared screen shows no picture yet");
    if (width * height > maxPixels) { // scaled down only past the server's pixel limit
      const factor = Math.sqrt(maxPixels / (width * height));
      width = Math.floor(width * factor);
      height = Math.floor(height * factor);
    }
    if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
    context2d.drawImage(ui.video, 0, 0, width, height);
    const blob = await encode();
    if (!blob || blob.type !== "image/webp") throw new Error("this browser cannot encode WebP");
    if (blob.size > maxBytes) throw new Error(`the screenshot is ${blob.size} bytes, over the limit of ${maxBytes}`);
    // the last frame's preview, kept in memory only (one small canvas): shown once the server confirms it
    pending.getContext("2d").drawImage(canvas, 0, 0, pending.width, pending.height);
    return blob;
  }

  async function captureNow(at) {
    await refreshWorkView();
    const meta = {
      capture_id: crypto.randomUUID(), captured_at: new Date(at).toISOString(), memo: ui.memo.value,
      kind: workViewOn ? "screenshot" : "tracked", source: "browser",
    };
    const item = { id: meta.capture_id, contract: contractId, seq: seq++, status: "queued", meta, image: null };
    if (workViewOn) {
      item.image = await frame();
      pendingId = item.id;
    }
    await putItem(item);
    await refreshQueue();
    drain();
    return item.id;
  }

  function schedule(after) {
    clearTimeout(timer);
    if (!stream) return;
    const now = Date.now();
    let from = after ? Math.max(now, after.end) : now;
    if (endedSlot !== null && slotOf(from) === endedSlot) from = endedSlot + slotMs;
    plan = planFor(from);
    ui.next.textContent = `the slot ${hhmm(plan.start)}–${hhmm(plan.end)} UTC`; // never the moment
    timer = setTimeout(fire, Math.max(0, plan.moment - now));
  }

  async function fire() {
    const current = plan;
    const now = Date.now();
    if (!stream || !current) return;
    if (!ending() && now < current.end && !paused) { // a timer woken after its slot ended is skipped
      root.dataset.capturing = "1"; // a capture begun before a stop still lands in the queue
      try {
        await captureNow(now);
      } catch (error) {
        say(`No capture in the slot ${hhmm(current.start)}: ${error.message}`);
      } finally {
        root.dataset.capturing = "";
      }
    }
    if (stream) schedule(current);
  }

  function ending() {
    if (track && track.readyState === "ended") { shareEnded(); return true; }
    return false;
  }

  function shareEnded() {
    if (!stream) return;
    endedSlot = slotOf(Date.now());
    stopTracking();
    const at = new Date().toISOString().slice(11, 19);
    say(`The screen share ended at ${at} UTC: tracking stopped, and nothing more is recorded in this slot. ` +
      "Share a screen again to go on.");
    setState("stopped: the share ended");
  }

  // One tracking tab per contract in this browser (a Web Lock held while tracking): a second tab would
  // take a second capture in every slot.
  let releaseTracking = null;

  function holdTrackingLock() {
    if (!navigator.locks) return Promise.resolve(true);
    return new Promise((resolve) => {
      navigator.locks.request(`workproof-tracker-track-${contractId}`, { ifAvailable: true }, (lock) => {
        if (!lock) { resolve(false); return undefined; }
        resolve(true);
        return new Promise((release) => { releaseTracking = release; });
      });
    });
  }

  function stopTracking() {
    if (releaseTracking) { releaseTracking(); releaseTracking = null; }
    clearTimeout(timer);
    clearInterval(watchdog);
    timer = watchdog = null;
    plan = null;
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = track = null;
    ui.video.srcObject = null;
    paused = false;
    ui.next.textContent = "—";
    showButtons();
  }

  ui.start.addEventListener("click", async () => {
    say("");
    if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) {
      say("This browser cannot share a screen (it needs a secure page, https or this computer).");
      return;
    }
    if (!(await holdTrackingLock())) {
      say("Another tab of this browser is already tracking this contract: use that one.");
      return;
    }
    try {
      stream = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: 1 }, audio: false });
    } catch (error) {
      say(`No screen was shared: ${error.message}`);
      stream = null;
      stopTracking();
      return;
    }
    track = stream.getVideoTracks()[0];
    track.addEventListener("ended", shareEnded);
    ui.video.srcObject = stream;
    await ui.video.play().catch(() => {});
    // track.stop() from a script fires no "ended": a watchdog notices a dead track within a second
    watchdog = setInterval(ending, 1000);
    paused = false;
    setState("tracking");
    showButtons();
    await refreshWorkView();
    schedule(null);
  });

  ui.pause.addEventListener("click", () => { paused = true; setState("paused"); showButtons(); });
  ui.resume.addEventListener("click", () => { paused = false; setState("tracking"); showButtons(); });
  ui.stop.addEventListener("click", () => { stopTracking(); setState("not tracking"); });

  // for the bench: one capture now, bypassing the schedule (frame → WebP → IndexedDB)
  root.captureNow = () => captureNow(Date.now());

  refreshQueue().then(() => drain());
})();
