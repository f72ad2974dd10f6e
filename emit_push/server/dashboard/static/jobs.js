// The jobs table: one page of the space's jobs (keyset paging with `before`, so a page
// deep in 100k jobs costs what the first does), kept live by the space stream: new jobs
// slide in on the first page, rows in view change as their jobs do, and the counts per
// status follow every transition.

import { ApiError, jobs as jobsApi, space as spaceApi } from "./api.js";
import { STATUS_EVENTS } from "./stream.js";
import {
  STATUSES, debounce, fmtAge, fmtDuration, fmtPercent, h, onFrame, parseTs, setStatus, statusBadge,
} from "./ui.js";

const PAGE_SIZES = [25, 50, 100];
const cursorStack = []; // the `before` cursors of the pages before this one (for "Newer")
let cursorKey = "";
let pagesRead = 0; // marks each page shown, for benchmarks/dashboard.py

export function renderJobs(main, params, ctx) {
  const filter = {
    status: STATUSES.includes(params.get("status")) ? params.get("status") : "",
    name: params.get("name") || "",
    before: params.get("before") || "",
    limit: PAGE_SIZES.includes(Number(params.get("limit"))) ? Number(params.get("limit")) : 50,
  };
  const key = `${filter.status}|${filter.name}|${filter.limit}`;
  if (key !== cursorKey || !filter.before) { cursorStack.length = 0; cursorKey = key; }

  const rows = new Map(); // job id -> {job, tr, cells}
  let newer = 0;
  let loading = false;
  let loadSeq = 0;
  let buffered = []; // events that came while a page was read: applied after it
  const dirty = new Set();
  let inserts = [];

  // -- layout ----------------------------------------------------------------------
  const chips = h("div", { class: "chips", role: "group", "aria-label": "Filter by status" });
  const nameInput = h("input", {
    type: "search", list: "job-names", placeholder: "any name", value: filter.name,
    "aria-label": "Filter by job name", autocomplete: "off",
  });
  const names = h("datalist", { id: "job-names" });
  const idInput = h("input", {
    type: "search", placeholder: "01J…", "aria-label": "Find a job by id", "data-shortcut": "/",
    autocomplete: "off", spellcheck: "false", size: "30",
  });
  const idError = h("span", { class: "error", role: "alert" });
  const sizeSelect = h(
    "select",
    { "aria-label": "Jobs per page" },
    PAGE_SIZES.map((n) => h("option", { value: n, selected: n === filter.limit, text: `${n} per page` })),
  );
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "jobs" },
    h("caption", { class: "sr-only", text: "Jobs, newest first" }),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        ["Name", "ID", "Status", "Attempt", "Progress", "Age", "Duration"].map((t) =>
          h("th", { scope: "col", class: t === "Attempt" ? "num" : "", text: t })),
      ),
    ),
    tbody,
  );
  const empty = h("div", { class: "empty", hidden: true });
  const newerNote = h("div", { class: "notice", hidden: true, role: "status" });
  const newestBtn = h("button", { type: "button", text: "« Newest" });
  const newerBtn = h("button", { type: "button", text: "‹ Newer" });
  const olderBtn = h("button", { type: "button", text: "Older ›" });
  const pageInfo = h("span", { class: "muted", "aria-live": "polite" });

  main.replaceChildren(
    h("h1", { text: "Jobs" }),
    chips,
    h(
      "div",
      { class: "toolbar" },
      h(
        "form",
        { class: "row", onsubmit: (e) => { e.preventDefault(); go({ name: nameInput.value.trim(), before: "" }); } },
        h("div", { class: "field" }, h("label", { text: "Name", for: "f-name" }), nameInput),
        names,
        h("button", { type: "submit", text: "Filter" }),
      ),
      h(
        "form",
        { class: "row", onsubmit: (e) => { e.preventDefault(); findById(); } },
        h("div", { class: "field" }, h("label", { text: "Job id", for: "f-id" }), idInput),
        h("button", { type: "submit", text: "Open" }),
        idError,
      ),
      h("div", { class: "field" }, h("label", { text: "Page size", for: "f-size" }), sizeSelect),
    ),
    newerNote,
    table,
    empty,
    h("nav", { class: "pager", "aria-label": "Pages" }, newestBtn, newerBtn, olderBtn, pageInfo),
  );
  nameInput.id = "f-name";
  idInput.id = "f-id";
  sizeSelect.id = "f-size";

  // -- navigation ------------------------------------------------------------------
  function hashFor(next) {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(next)) if (v && !(k === "limit" && v === 50)) p.set(k, v);
    const qs = p.toString();
    return `#/${qs ? `?${qs}` : ""}`;
  }

  function go(changes) {
    ctx.navigate(hashFor({ ...filter, ...changes }));
  }

  sizeSelect.addEventListener("change", () => go({ limit: Number(sizeSelect.value), before: "" }));
  newestBtn.addEventListener("click", () => { cursorStack.length = 0; go({ before: "" }); });
  newerBtn.addEventListener("click", () => go({ before: cursorStack.pop() || "" }));
  olderBtn.addEventListener("click", () => {
    const last = tbody.lastElementChild;
    if (!last) return;
    cursorStack.push(filter.before);
    go({ before: last.dataset.id });
  });

  async function findById() {
    const id = idInput.value.trim();
    idError.textContent = "";
    if (!id) return;
    try {
      await jobsApi.get(id, { eventsLimit: 1 });
      ctx.navigate(`#/jobs/${encodeURIComponent(id)}`);
    } catch (err) {
      idError.textContent = err instanceof ApiError && err.status === 404 ? ` No job has the id ${id}.` : ` ${err.message}`;
      idInput.setAttribute("aria-invalid", "true");
    }
  }

  // -- counts ----------------------------------------------------------------------
  // Built once and updated in place, so that a focused chip keeps its focus.
  const chipCounts = new Map();
  for (const status of ["", ...STATUSES]) {
    const n = h("span", { class: "n" });
    chipCounts.set(status, n);
    const b = h(
      "button",
      {
        type: "button", "aria-pressed": String(filter.status === status),
        onclick: () => go({ status, before: "" }),
      },
      status ? statusBadge(status) : "All",
      n,
    );
    b.dataset.status = status || "all";
    chips.append(b);
  }

  function renderCounts() {
    const counts = ctx.stream.counts;
    if (!counts) return;
    const total = Object.values(counts).reduce((a, b) => a + b, 0);
    for (const [status, n] of chipCounts) {
      n.textContent = (status ? counts[status] || 0 : total).toLocaleString();
    }
  }
  const renderCountsSoon = onFrame(renderCounts);

  // -- rows ------------------------------------------------------------------------
  function makeRow(job) {
    const link = h("a", { href: `#/jobs/${encodeURIComponent(job.id)}`, text: job.id });
    const bar = h("progress", { max: "100", value: "0", "aria-label": `Progress of ${job.id}` });
    const pct = h("span", { class: "pct" });
    const cells = {
      status: statusBadge(job.status),
      push: h("span", { class: "push-failed", hidden: true, text: "⚠ push failed" }),
      attempt: h("td", { class: "num" }),
      bar, pct,
      progress: h("div", { class: "prog-cell" }, bar, pct),
      age: h("td", { class: "age" }),
      duration: h("td", { class: "dur" }),
    };
    const tr = h(
      "tr",
      { "data-id": job.id },
      h("td", { class: "name", text: job.name }),
      h("td", { class: "id" }, link),
      h("td", { class: "st" }, cells.status, cells.push),
      cells.attempt,
      h("td", { class: "prog" }, cells.progress),
      cells.age,
      cells.duration,
    );
    tr.addEventListener("click", (event) => {
      if (event.target.closest("a, button")) return;
      ctx.navigate(`#/jobs/${encodeURIComponent(job.id)}`);
    });
    const entry = { job, tr, cells };
    paint(entry);
    return entry;
  }

  function paint(entry) {
    const { job, cells, tr } = entry;
    setStatus(cells.status, job.status);
    tr.dataset.status = job.status;
    // A pending job whose last push (seen on the stream) failed: why, in the title.
    const failure = job.status === "pending" ? job.pushFailure : null;
    cells.push.hidden = !failure;
    cells.push.title = failure ? pushFailureText(failure) : "";
    cells.attempt.textContent = String((job.attemptNumber || 0) + 1);
    cells.attempt.title = job.maxRetries === undefined ? "" : `attempt ${(job.attemptNumber || 0) + 1} of ${job.maxRetries + 1}`;
    const p = job.progress;
    const done = job.status === "completed";
    const percent = p && typeof p.percent === "number" ? p.percent : done ? 100 : null;
    cells.bar.hidden = percent === null;
    cells.bar.value = percent || 0;
    cells.bar.classList.toggle("done", done);
    cells.pct.textContent = percent === null ? "–" : fmtPercent(percent);
    cells.progress.title = (p && p.message) || "";
    tick(entry, Date.now());
  }

  function tick(entry, now) {
    const { job, cells } = entry;
    cells.age.textContent = fmtAge(now - parseTs(job.createdAt));
    const started = parseTs(job.startedAt);
    const ended = parseTs(job.completedAt);
    cells.duration.textContent = started ? fmtDuration((ended || now) - started) : "–";
  }

  const flush = onFrame(() => {
    if (inserts.length) {
      const fresh = inserts.sort((a, b) => (a.id < b.id ? 1 : -1)).slice(0, filter.limit);
      inserts = [];
      const frag = document.createDocumentFragment();
      for (const job of fresh) {
        if (rows.has(job.id)) continue;
        const entry = makeRow(job);
        entry.tr.classList.add("fresh");
        rows.set(job.id, entry);
        frag.append(entry.tr);
      }
      tbody.prepend(frag);
      while (tbody.children.length > filter.limit) {
        const last = tbody.lastElementChild;
        rows.delete(last.dataset.id);
        last.remove();
      }
      showEmpty();
      pageInfoText();
    }
    for (const entry of dirty) paint(entry);
    dirty.clear();
  });

  function showEmpty() {
    const none = tbody.children.length === 0;
    table.hidden = none && !loading;
    empty.hidden = !none;
    if (none) {
      empty.replaceChildren(
        filter.status || filter.name || filter.before
          ? "No jobs match. "
          : "No jobs yet. ",
        h("a", { href: "#/new", text: "Create a job" }),
      );
    }
  }

  function pageInfoText() {
    const n = tbody.children.length;
    newestBtn.disabled = !filter.before;
    newerBtn.disabled = !filter.before;
    olderBtn.disabled = n < filter.limit;
    pageInfo.textContent = n ? `${n} job${n === 1 ? "" : "s"} on this page${filter.before ? "" : ", newest first"}` : "";
  }

  function matches(msg) {
    return (!filter.status || msg.status === filter.status) && (!filter.name || msg.jobName === filter.name);
  }

  function apply(entry, msg) {
    if (update(entry.job, msg)) dirty.add(entry);
  }

  /** The job as the event leaves it; false for an event older than the job as read. */
  function update(job, msg) {
    // An event older than the row (read after it happened) would turn the row back.
    if (job.updatedAt && parseTs(msg.timestamp) < parseTs(job.updatedAt)) return false;
    job.updatedAt = msg.timestamp;
    job.status = msg.status;
    const at = msg.timestamp;
    switch (msg.type) {
      case "delivered": job.deliveredAt = at; break;
      case "running": job.startedAt = at; job.completedAt = null; break;
      case "progress": job.progress = msg.data; break;
      case "retried": job.attemptNumber = msg.data.attemptNumber; job.startedAt = null; break;
      case "pending": job.startedAt = null; break;
      case "completed": case "dead": case "killed": job.completedAt = at; break;
      case "push_failed": job.pushFailure = msg.data || {}; break;
      case "push_sent": job.pushFailure = null; break;
      default: break;
    }
    if (job.status !== "pending") job.pushFailure = null;
    return true;
  }

  const reload = debounce(() => load(), 250);

  function onMessage(msg) {
    renderCountsSoon();
    if (msg.type === "connected") {
      if (msg.missed) load();
      return;
    }
    if (msg.type === "counts") return;
    if (loading) buffered.push(msg);
    else handle(msg);
  }

  function handle(msg) {
    const entry = rows.get(msg.jobId);
    const moved = STATUS_EVENTS.has(msg.type) && msg.type !== "created";
    const drawing = entry ? null : inserts.find((job) => job.id === msg.jobId);
    if (entry) {
      apply(entry, msg);
      if (filter.status && moved && msg.status !== filter.status) reload();
      flush();
    } else if (drawing) { // created since the last frame: the row is drawn as it is by then
      update(drawing, msg);
      if (filter.status && moved && msg.status !== filter.status) reload();
    } else if (msg.type === "created" && matches(msg)) {
      if (!filter.before) {
        inserts.push({
          id: msg.jobId, name: msg.jobName, status: msg.status, attemptNumber: 0,
          createdAt: msg.timestamp, updatedAt: msg.timestamp, progress: null,
        });
        flush();
      } else {
        newer += 1;
        newerNote.replaceChildren(
          `${newer.toLocaleString()} newer job${newer === 1 ? "" : "s"} since this page was read. `,
          h("button", { type: "button", class: "link", text: "Show the newest", onclick: () => newestBtn.click() }),
        );
        newerNote.hidden = false;
      }
    } else if (filter.status && moved && matches(msg)) {
      reload(); // a job entered the status shown: where it belongs, only the server knows
    }
  }

  // -- loading ---------------------------------------------------------------------
  async function load() {
    loading = true;
    const seq = ++loadSeq;
    const query = { status: filter.status, limit: filter.limit, before: filter.before };
    let list;
    try {
      list = filter.name ? await jobsApi.search({ ...query, name: filter.name }) : await jobsApi.list(query);
    } catch (err) {
      if (seq !== loadSeq) return;
      loading = false;
      buffered = [];
      empty.hidden = false;
      table.hidden = true;
      empty.textContent = `Could not read the jobs: ${err.message}`;
      return;
    }
    if (seq !== loadSeq) return; // a newer read is on its way
    loading = false;
    inserts = [];
    const frag = document.createDocumentFragment();
    const keep = new Map();
    for (const job of list) {
      const old = rows.get(job.id);
      const entry = old ? Object.assign(old, { job }) : makeRow(job);
      if (old) paint(entry);
      keep.set(job.id, entry);
      ctx.stream.know(job.id, job.status);
      frag.append(entry.tr);
    }
    rows.clear();
    for (const [id, entry] of keep) rows.set(id, entry);
    tbody.replaceChildren(frag);
    const late = buffered;
    buffered = [];
    for (const msg of late) handle(msg);
    showEmpty();
    pageInfoText();
    performance.mark("emit:jobs-table");
    document.body.dataset.jobsLoaded = String(++pagesRead);
  }

  async function loadNames() {
    try {
      const info = await spaceApi.get();
      names.replaceChildren(...info.names.map((n) => h("option", { value: n })));
    } catch { /* the name list is a convenience */ }
  }

  // Keyboard: ↑/↓ (or k/j) move between the rows' links.
  tbody.addEventListener("keydown", (event) => {
    const row = event.target.closest("tr");
    if (!row) return;
    let next = null;
    if (event.key === "ArrowDown" || event.key === "j") next = row.nextElementSibling;
    else if (event.key === "ArrowUp" || event.key === "k") next = row.previousElementSibling;
    else return;
    event.preventDefault();
    if (next) next.querySelector("a").focus();
  });

  renderCounts();
  pageInfoText();
  const unsubscribe = ctx.stream.subscribe(onMessage);
  const ticker = setInterval(() => { // ages and running durations (no server call)
    const now = Date.now();
    for (const entry of rows.values()) tick(entry, now);
  }, 1000);
  load();
  loadNames();

  return () => {
    unsubscribe();
    clearInterval(ticker);
    reload.cancel();
  };
}

/** What a failed push's record says: "HTTP 401: <error>. Hint: <hint>". */
function pushFailureText(data) {
  const status = data.statusCode === null || data.statusCode === undefined ? "no answer" : `HTTP ${data.statusCode}`;
  const parts = [data.error && data.error !== status ? `${status}: ${data.error}` : status];
  if (data.hint) parts.push(`Hint: ${data.hint}`);
  if (data.willRetry) parts.push("It will be sent again.");
  return parts.join(". ");
}
