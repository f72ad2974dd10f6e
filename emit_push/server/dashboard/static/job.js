// One job: its facts, payload and result, a live progress bar with sub-progress, the
// event timeline (pushes and callbacks with their status codes and hints), and its logs
// tailing live. The job's own stream drives it; the logs are read over HTTP when the
// stream says new lines exist. Kill and re-push are the API's calls.

import { ApiError, jobs as jobsApi } from "./api.js";
import { connectJob } from "./stream.js";
import {
  LIVE, TERMINAL, debounce, fmtDate, fmtDuration, fmtPercent, fmtTime, h, jsonView, parseTs,
  setStatus, statusBadge, toast,
} from "./ui.js";

const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"];
const MAX_LOG_LINES = 5000; // kept in the page; older lines are dropped from view
const LOG_PAGE = 1000;
const EVENTS_PAGE = 200;

export function renderJob(main, jobId, ctx) {
  let job = null;
  let events = []; // history read over HTTP, plus stream events since that read
  let eventsCursor = null;
  let closed = false;
  let stream = null;

  const title = h("h1");
  const badge = statusBadge("pending");
  const facts = h("dl", { class: "facts" });
  const actions = h("div", { class: "actions" });
  const bar = h("progress", { class: "big", max: "100", value: "0", "aria-label": "Progress" });
  const pct = h("strong", { class: "pct" });
  const progressMsg = h("p", { class: "msg" });
  const subs = h("div", { class: "subs" });
  const payloadBox = h("div");
  const resultBox = h("div");
  const checkpointBox = h("div");
  const timelineBody = h("tbody");
  const olderEvents = h("button", { type: "button", text: "Load older events", hidden: true });
  const streamState = h("span", { class: "muted" });
  const levelSelect = h(
    "select",
    { id: "log-level", "aria-label": "Lowest level shown" },
    h("option", { value: "", text: "all levels" }),
    LEVELS.slice(1).map((l) => h("option", { value: l, text: `${l} and above` })),
  );
  const logSearch = h("input", { id: "log-q", type: "search", placeholder: "text in message", "aria-label": "Search the logs" });
  const follow = h("input", { id: "log-follow", type: "checkbox", checked: true });
  const logbox = h("div", { class: "logbox", role: "log", "aria-label": "Job logs", tabindex: "0", "aria-live": "off" });
  const logInfo = h("p", { class: "muted" });
  const moreLogs = h("button", { type: "button", text: "Load more lines", hidden: true });

  main.replaceChildren(
    h("div", { class: "crumbs" }, h("a", { href: "#/", text: "← Jobs" })),
    h("div", { class: "head" }, title, badge, streamState),
    h("p", { class: "mono muted", text: jobId }),
    actions,
    facts,
    h("section", { "aria-labelledby": "h-progress" },
      h("h2", { id: "h-progress", text: "Progress" }),
      h("div", { class: "progress-box" },
        h("div", { class: "prog-cell" }, bar, pct), progressMsg, subs)),
    h("div", { class: "grid2" },
      h("section", { "aria-labelledby": "h-payload" }, h("h2", { id: "h-payload", text: "Payload" }), payloadBox),
      h("section", { "aria-labelledby": "h-result" }, h("h2", { id: "h-result", text: "Result" }), resultBox)),
    checkpointBox,
    h("section", { "aria-labelledby": "h-timeline" },
      h("h2", { id: "h-timeline", text: "Timeline" }),
      h("table", { class: "timeline" },
        h("thead", {}, h("tr", {}, ["Time", "Event", "Attempt", "Details"].map((t) => h("th", { scope: "col", text: t })))),
        timelineBody),
      h("div", { class: "actions" }, olderEvents,
        h("button", { type: "button", text: "Refresh", onclick: () => { readJob(); tailLogs(); } }),
        h("span", { class: "muted", text: "Push and callback attempts are recorded when the receiver answers." }))),
    h("section", { "aria-labelledby": "h-logs" },
      h("h2", { id: "h-logs", text: "Logs" }),
      h("form", { class: "toolbar", onsubmit: (e) => { e.preventDefault(); restartLogs(); } },
        h("div", { class: "field" }, h("label", { for: "log-level", text: "Level" }), levelSelect),
        h("div", { class: "field" }, h("label", { for: "log-q", text: "Search" }), logSearch),
        h("button", { type: "submit", text: "Apply" }),
        h("label", { class: "row" }, follow, " Follow new lines")),
      logbox, logInfo, moreLogs),
  );
  levelSelect.addEventListener("change", () => restartLogs());

  // -- the job ---------------------------------------------------------------------
  function fact(label, value, cls) {
    return h("div", {}, h("dt", { text: label }), h("dd", { class: cls || "", text: value }));
  }

  function renderFacts() {
    const started = parseTs(job.startedAt);
    const ended = parseTs(job.completedAt);
    facts.replaceChildren(...[
      fact("Name", job.name),
      fact("Attempt", job.maxRetries === undefined ? String(job.attemptNumber + 1) : `${job.attemptNumber + 1} of ${job.maxRetries + 1}`),
      fact("Created", fmtDate(job.createdAt)),
      job.scheduledFor ? fact("Scheduled for", fmtDate(job.scheduledFor)) : null,
      fact("Delivered", fmtDate(job.deliveredAt)),
      fact("Started", fmtDate(job.startedAt)),
      fact("Finished", fmtDate(job.completedAt)),
      fact("Duration", started ? fmtDuration((ended || Date.now()) - started) : "–", "duration"),
      fact("Timeout", job.timeoutSeconds ? `${job.timeoutSeconds} s` : "–"),
      job.callbackUrl ? fact("Callback", job.callbackUrl) : null,
    ].filter(Boolean));
  }

  function renderHead() {
    title.textContent = job.name;
    setStatus(badge, job.status);
    document.title = `${job.name} · ${job.status} · emit`;
    renderFacts();
    renderActions();
  }

  function renderProgress() {
    const p = job.progress;
    if (!p) {
      bar.value = job.status === "completed" ? 100 : 0;
      pct.textContent = job.status === "completed" ? "100%" : "–";
      progressMsg.textContent = job.status === "completed" ? "" : "No progress reported yet.";
      subs.replaceChildren();
      return;
    }
    bar.value = p.percent;
    bar.classList.toggle("done", job.status === "completed");
    pct.textContent = fmtPercent(p.percent);
    progressMsg.textContent = p.message || "";
    const stages = Object.entries(p.subProgress || {});
    subs.replaceChildren(
      ...stages.flatMap(([name, stage]) => [
        h("span", { text: name }),
        h("progress", { max: "100", value: String(stage.percent), "aria-label": `${name} progress` }),
        h("span", { class: "pct", text: fmtPercent(stage.percent) }),
      ]),
    );
  }

  function renderData() {
    payloadBox.replaceChildren(jsonView(job.payload, "Payload"));
    resultBox.replaceChildren(
      job.result === null || job.result === undefined
        ? h("p", { class: "muted", text: TERMINAL.has(job.status) ? "No result." : "Not finished yet." })
        : jsonView(job.result, "Result"),
    );
    checkpointBox.replaceChildren(
      ...(job.checkpoint ? [h("h2", { text: "Last checkpoint" }), jsonView(job.checkpoint, "Checkpoint")] : []),
    );
  }

  // -- actions ---------------------------------------------------------------------
  function renderActions() {
    const buttons = [];
    if (LIVE.has(job.status)) {
      buttons.push(h("button", { type: "button", class: "danger", text: "Kill…", onclick: askKill }));
    }
    if (job.status === "pending") {
      buttons.push(h("button", { type: "button", text: "Re-push", onclick: repush }));
    }
    if (actions.dataset.mode === "confirm" && LIVE.has(job.status)) return; // keep the open form
    actions.dataset.mode = "";
    actions.replaceChildren(...buttons);
  }

  function askKill() {
    const reason = h("input", { type: "text", id: "kill-reason", placeholder: "optional", "aria-label": "Reason for the kill" });
    actions.dataset.mode = "confirm";
    actions.replaceChildren(
      h("form", {
        class: "kill-confirm",
        onsubmit: async (e) => {
          e.preventDefault();
          try {
            const answer = await jobsApi.kill(jobId, reason.value.trim());
            job.status = answer.status;
            toast(`Killed ${job.name}`);
          } catch (err) {
            toast(`Kill failed: ${err.message}`, "error");
          }
          actions.dataset.mode = "";
          renderHead();
        },
      },
      h("label", { for: "kill-reason", text: "Reason" }), reason,
      h("button", { type: "submit", class: "danger", text: "Kill the job" }),
      h("button", { type: "button", text: "Cancel", onclick: () => { actions.dataset.mode = ""; renderActions(); } })),
    );
    reason.focus();
  }

  async function repush() {
    try {
      const answer = await jobsApi.repush([jobId]);
      toast(answer.queued ? "Push queued: the space's push URL gets the job again" : "Nothing queued");
      refreshSoon();
    } catch (err) {
      const where = err instanceof ApiError && err.code === "push_off" ? " Set a push URL on the Space page." : "";
      toast(`Re-push failed: ${err.message}${where}`, "error");
    }
  }

  // -- timeline --------------------------------------------------------------------
  function kv(name, value) {
    if (value === null || value === undefined || value === "") return null;
    return h("span", { class: "kv" }, h("b", { text: `${name} ` }), String(value));
  }

  function compact(value) {
    const text = JSON.stringify(value);
    return text && text.length > 300 ? `${text.slice(0, 300)}…` : text;
  }

  function details(event) {
    const d = event.data || {};
    switch (event.type) {
      case "created": return [kv("name", d.name), kv("scheduled for", d.scheduledFor && fmtDate(d.scheduledFor))];
      case "scheduled": return [kv("for", fmtDate(d.scheduledFor))];
      case "pending": return [kv("reason", d.reason)];
      case "delivered": return [kv("via", d.via)];
      case "progress": return [kv("", fmtPercent(d.percent)), d.message || ""];
      case "retried": return [kv("error", d.error), kv("next attempt", (d.attemptNumber ?? 0) + 1)];
      case "dead": return [kv("error", d.error)];
      case "killed": return [kv("reason", d.reason || "none given")];
      case "completed": return [compact(event.data)];
      case "push_sent": case "push_failed": case "callback_sent": case "callback_failed":
        return [
          kv("HTTP", d.statusCode ?? "no answer"),
          kv("url", d.url),
          kv("try", d.retryAttempt !== undefined ? d.retryAttempt + 1 : null),
          d.willRetry ? kv("", "will retry") : null,
          d.error ? h("span", { class: "ev-bad", text: d.error }) : null,
          d.hint ? h("span", { class: "hint-text", text: `Hint: ${d.hint}` }) : null,
        ];
      default: return [event.data === null || event.data === undefined ? "" : compact(event.data)];
    }
  }

  const GOOD = new Set(["completed", "push_sent", "callback_sent", "running"]);
  const BAD = new Set(["dead", "killed", "push_failed", "callback_failed", "retried"]);

  function renderTimeline() {
    timelineBody.replaceChildren(
      ...events.map((event) =>
        h("tr", { "data-type": event.type },
          h("td", { class: "t", text: fmtTime(event.createdAt), title: event.createdAt }),
          h("td", { class: `type ${GOOD.has(event.type) ? "ev-good" : BAD.has(event.type) ? "ev-bad" : ""}`, text: event.type }),
          h("td", { class: "num", text: event.attemptNumber === undefined ? "" : String(event.attemptNumber + 1) }),
          h("td", {}, details(event)))),
    );
    olderEvents.hidden = !eventsCursor;
  }

  olderEvents.addEventListener("click", async () => {
    try {
      const older = await jobsApi.get(jobId, { eventsLimit: EVENTS_PAGE, eventsBefore: eventsCursor });
      events = [...older.events, ...events];
      eventsCursor = older.eventsCursor;
      renderTimeline();
    } catch (err) { toast(err.message, "error"); }
  });

  // -- reading and streaming -------------------------------------------------------
  async function readJob() {
    let doc;
    try {
      doc = await jobsApi.get(jobId, { eventsLimit: EVENTS_PAGE });
    } catch (err) {
      if (job) { toast(err.message, "error"); return; }
      const text = err instanceof ApiError && err.status === 404 ? `No job has the id ${jobId}.` : `Could not read the job: ${err.message}`;
      main.replaceChildren(h("div", { class: "crumbs" }, h("a", { href: "#/", text: "← Jobs" })), h("p", { class: "empty", text }));
      closed = true;
      return;
    }
    if (closed) return;
    events = doc.events || [];
    eventsCursor = doc.eventsCursor || null;
    delete doc.events;
    job = doc;
    renderHead();
    renderProgress();
    renderData();
    renderTimeline();
  }
  const refreshSoon = debounce(() => { if (!closed) readJob(); }, 1000);

  function onEvent(msg) {
    if (!job) return;
    job.status = msg.status || job.status;
    const at = msg.timestamp;
    switch (msg.type) {
      case "progress": job.progress = { ...msg.data, updatedAt: at }; renderProgress(); break;
      case "checkpoint": job.checkpoint = msg.data; renderData(); break;
      case "delivered": job.deliveredAt = at; break;
      case "running": job.startedAt = at; break;
      case "retried": job.attemptNumber = msg.data.attemptNumber; job.startedAt = null; break;
      case "completed": job.completedAt = at; job.result = msg.data; renderProgress(); renderData(); break;
      case "dead": case "killed": job.completedAt = at; job.result = msg.data; renderData(); break;
      case "logs": tailLogs(); return;
      default: break;
    }
    events.push({ type: msg.type, data: msg.data, attemptNumber: job.attemptNumber, createdAt: at });
    renderHead();
    renderTimeline();
    refreshSoon(); // the history holds what streams do not carry (callbacks)
  }

  // -- logs ------------------------------------------------------------------------
  let lastSeq = 0;
  let logsBusy = false;
  let logsAgain = false;
  let shown = 0;
  let capped = false;

  function logLine(entry) {
    const level = entry.level || "info";
    const line = h("div", { class: `logline l-${level}`, "data-seq": entry.seq },
      h("span", { class: "ts", text: fmtTime(entry.ts), title: entry.ts }),
      h("span", { class: `lvl lvl-${level}`, text: level }),
      h("span", { class: "src", text: entry.source || "" }),
      h("span", { class: "message", text: entry.message }));
    if (entry.metadata && Object.keys(entry.metadata).length) {
      line.append(h("details", {}, h("summary", { text: `metadata ${compact(entry.metadata)}` }), jsonView(entry.metadata, "Log metadata")));
    }
    return line;
  }

  async function readLogs() {
    const query = { after: lastSeq, limit: LOG_PAGE, level: levelSelect.value, q: logSearch.value.trim() };
    const page = await jobsApi.logs(jobId, query);
    if (closed) return null;
    const atBottom = logbox.scrollHeight - logbox.scrollTop - logbox.clientHeight < 40;
    const frag = document.createDocumentFragment();
    for (const entry of page.logs) frag.append(logLine(entry));
    logbox.append(frag);
    shown += page.logs.length;
    if (page.logs.length) lastSeq = page.logs[page.logs.length - 1].seq;
    while (logbox.childElementCount > MAX_LOG_LINES) logbox.firstElementChild.remove();
    if (atBottom && follow.checked) logbox.scrollTop = logbox.scrollHeight;
    return page;
  }

  async function tailLogs() {
    if (capped || !follow.checked) return;
    if (logsBusy) { logsAgain = true; return; }
    logsBusy = true;
    try {
      do {
        logsAgain = false;
        let page;
        do { page = await readLogs(); } while (page && page.nextCursor !== null && !closed);
      } while (logsAgain && !closed);
    } catch (err) {
      toast(`Could not read the logs: ${err.message}`, "error");
    } finally {
      logsBusy = false;
      renderLogInfo();
    }
  }

  async function firstLogs() {
    logsBusy = true;
    try {
      let page;
      let pages = 0;
      do { page = await readLogs(); pages += 1; } while (page && page.nextCursor !== null && pages < MAX_LOG_LINES / LOG_PAGE);
      capped = Boolean(page && page.nextCursor !== null);
    } catch (err) {
      logInfo.textContent = `Could not read the logs: ${err.message}`;
    } finally {
      logsBusy = false;
      renderLogInfo();
      if (logsAgain && !capped) tailLogs();
    }
  }

  function renderLogInfo() {
    moreLogs.hidden = !capped;
    logInfo.textContent = shown
      ? `${shown.toLocaleString()} line${shown === 1 ? "" : "s"}${capped ? " so far: more on the server" : ""}${logbox.childElementCount < shown ? ` (the last ${MAX_LOG_LINES.toLocaleString()} shown)` : ""}`
      : "No log lines yet.";
  }

  moreLogs.addEventListener("click", async () => {
    capped = false;
    await firstLogs();
  });

  function restartLogs() {
    lastSeq = 0;
    shown = 0;
    capped = false;
    logbox.replaceChildren();
    firstLogs();
  }
  follow.addEventListener("change", () => { if (follow.checked) tailLogs(); });

  // -- start -----------------------------------------------------------------------
  const STATE_TEXT = { connecting: "connecting…", live: "● live", reconnecting: "reconnecting…", ended: "finished", refused: "stream refused" };
  readJob().then(() => {
    if (closed) return;
    firstLogs();
    stream = connectJob(jobId, {
      onInit: (message) => {
        if (closed || !message.data) return;
        const events0 = job ? job : {};
        job = { ...events0, ...message.data };
        renderHead();
        renderProgress();
        renderData();
      },
      onEvent,
      onState: (state) => {
        streamState.textContent = STATE_TEXT[state] || state;
        if (state === "ended") refreshSoon();
      },
    });
  });
  const ticker = setInterval(() => {
    if (job && job.startedAt && !job.completedAt) {
      const dd = facts.querySelector(".duration");
      if (dd) dd.textContent = fmtDuration(Date.now() - parseTs(job.startedAt));
    }
  }, 1000);

  return () => {
    closed = true;
    clearInterval(ticker);
    refreshSoon.cancel();
    if (stream) stream.close();
    document.title = "emit dashboard";
  };
}
