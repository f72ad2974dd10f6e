// The space: jobs per status (live), its keys (masked: the server never sends them
// whole), the push settings (`GET`/`PUT /spaces/:id/push`) and the last push deliveries.

import { space as spaceApi, spaceId } from "./api.js";
import { STATUSES, fmtDate, fmtTime, h, onFrame, statusBadge, toast } from "./ui.js";

export function renderSpace(main, params, ctx) {
  let closed = false;
  const counts = h("div", { class: "counts" });
  const countCells = new Map();
  for (const status of STATUSES) {
    const n = h("strong", { text: "–" });
    countCells.set(status, n);
    counts.append(h("a", { class: "count", href: `#/?status=${status}`, "aria-label": `${status} jobs` }, n, statusBadge(status)));
  }
  const keysBody = h("tbody");
  const created = h("span");

  // -- push settings form ----------------------------------------------------------
  const url = h("input", { id: "push-url", type: "url", placeholder: "http://127.0.0.1:8788/ (empty: push off)", size: "50", autocomplete: "off" });
  const headerRows = h("div", { class: "headers-editor", id: "push-headers" });
  const jobNames = h("input", { id: "push-names", type: "text", placeholder: "every name", autocomplete: "off", size: "50" });
  const pushState = h("p", { class: "muted", role: "status" });
  const pushError = h("p", { class: "error", role: "alert" });
  const saveBtn = h("button", { type: "submit", class: "primary", text: "Save push settings" });

  function headerRow(name = "", value = "") {
    const nameInput = h("input", { type: "text", value: name, placeholder: "Header name", "aria-label": "Header name", autocomplete: "off", class: "h-name" });
    const valueInput = h("input", { type: "password", value, placeholder: "value", "aria-label": `Value of ${name || "the header"}`, autocomplete: "off", class: "h-value" });
    const reveal = h("button", {
      type: "button", text: "Show", "aria-pressed": "false",
      onclick: () => {
        const showing = valueInput.type === "text";
        valueInput.type = showing ? "password" : "text";
        reveal.textContent = showing ? "Show" : "Hide";
        reveal.setAttribute("aria-pressed", String(!showing));
      },
    });
    const row = h("div", { class: "hrow" }, nameInput, valueInput, reveal,
      h("button", { type: "button", text: "Remove", "aria-label": `Remove header ${name}`, onclick: () => row.remove() }));
    return row;
  }

  function showPush(settings) {
    url.value = settings.url || "";
    headerRows.replaceChildren(...Object.entries(settings.headers || {}).map(([n, v]) => headerRow(n, v)));
    jobNames.value = (settings.jobNames || []).join(", ");
    pushState.textContent = settings.url
      ? `Push is on: ${settings.jobNames && settings.jobNames.length ? `jobs named ${settings.jobNames.join(", ")}` : "every job"} → ${settings.url}`
      : "Push is off: no URL. Workers must poll.";
  }

  function readForm() {
    const headers = {};
    for (const row of headerRows.querySelectorAll(".hrow")) {
      const n = row.querySelector(".h-name").value.trim();
      if (n) headers[n] = row.querySelector(".h-value").value;
    }
    const names = jobNames.value.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);
    return { url: url.value.trim(), headers, jobNames: names.length ? names : null };
  }

  const form = h(
    "form",
    {
      class: "card",
      onsubmit: async (event) => {
        event.preventDefault();
        pushError.textContent = "";
        saveBtn.disabled = true;
        try {
          showPush(await spaceApi.setPush(readForm()));
          toast("Push settings saved");
        } catch (err) {
          pushError.textContent = err.message;
        } finally {
          saveBtn.disabled = false;
        }
      },
    },
    pushState,
    h("div", { class: "field" }, h("label", { for: "push-url", text: "URL" }), url,
      h("small", { text: "Where job.pending pushes go (POST). Empty turns push off." })),
    h("fieldset", { class: "field" },
      h("legend", { text: "Headers" }),
      h("small", { class: "hint", text: "Sent with every push, e.g. Authorization: Bearer <your push secret>. Values are hidden until shown." }),
      headerRows,
      h("div", {}, h("button", { type: "button", text: "Add header", onclick: () => { const row = headerRow(); headerRows.append(row); row.querySelector("input").focus(); } }))),
    h("div", { class: "field" }, h("label", { for: "push-names", text: "Job names" }), jobNames,
      h("small", { text: "Comma-separated; empty: push every job." })),
    h("div", { class: "actions" }, saveBtn, pushError),
  );

  // -- deliveries ------------------------------------------------------------------
  const deliveriesBody = h("tbody");
  const deliveriesEmpty = h("p", { class: "muted", hidden: true, text: "No push attempts among the recent jobs." });

  function delivery(d) {
    const data = d.data || {};
    const ok = d.type === "push_sent";
    return h("tr", {},
      h("td", { class: "t", text: fmtTime(d.createdAt), title: d.createdAt }),
      h("td", { class: "id" }, h("a", { class: "mono", href: `#/jobs/${encodeURIComponent(d.jobId)}`, text: d.jobId })),
      h("td", { text: d.jobName }),
      h("td", { class: ok ? "ev-good" : "ev-bad", text: ok ? "✓ sent" : "✕ failed" }),
      h("td", { class: "num", text: data.statusCode ?? "–" }),
      h("td", {},
        data.error ? h("span", { text: data.error }) : null,
        data.hint ? h("span", { class: "hint-text", text: `Hint: ${data.hint}` }) : null),
      h("td", { class: "num", text: data.retryAttempt !== undefined ? String(data.retryAttempt + 1) : "" }),
      h("td", { text: data.willRetry ? "yes" : "no" }));
  }

  let loading = false; // a read in flight: an attempt streamed meanwhile means read again
  let stale = false;
  async function loadDeliveries() {
    if (loading) { stale = true; return; }
    loading = true;
    try {
      const { deliveries } = await spaceApi.deliveries(20);
      if (closed) return;
      deliveriesBody.replaceChildren(...deliveries.map(delivery));
      deliveriesEmpty.hidden = deliveries.length > 0;
    } catch (err) {
      deliveriesEmpty.hidden = false;
      deliveriesEmpty.textContent = `Could not read the deliveries: ${err.message}`;
    } finally {
      loading = false;
      if (stale && !closed) { stale = false; loadDeliveries(); }
    }
  }
  // Each push attempt comes on the space stream as it is recorded (push_sent, push_failed):
  // the newest goes on top, the table keeps its 20 rows.
  function addDelivery(msg) {
    if (loading) { stale = true; return; }
    deliveriesBody.prepend(delivery({
      jobId: msg.jobId, jobName: msg.jobName, type: msg.type, createdAt: msg.timestamp, data: msg.data,
    }));
    while (deliveriesBody.children.length > 20) deliveriesBody.lastElementChild.remove();
    deliveriesEmpty.hidden = true;
  }

  main.replaceChildren(
    h("h1", { text: "Space" }),
    h("p", {}, h("span", { class: "mono", text: spaceId() }), " · created ", created),
    h("section", { "aria-labelledby": "h-counts" }, h("h2", { id: "h-counts", text: "Jobs per status" }), counts),
    h("section", { "aria-labelledby": "h-keys" },
      h("h2", { id: "h-keys", text: "API keys" }),
      h("p", { class: "muted", text: "Shown masked: the server never sends a key whole. The full worker and producer keys are printed once by emit-push server." }),
      h("table", {},
        h("thead", {}, h("tr", {}, ["Name", "Key", "Scopes", "Created"].map((t) => h("th", { scope: "col", text: t })))),
        keysBody)),
    h("section", { "aria-labelledby": "h-push" }, h("h2", { id: "h-push", text: "Push settings" }), form),
    h("section", { "aria-labelledby": "h-deliveries" },
      h("h2", { id: "h-deliveries", text: "Last push deliveries" }),
      h("table", { class: "timeline" },
        h("thead", {}, h("tr", {}, ["Time", "Job", "Name", "Result", "HTTP", "Error", "Try", "Will retry"].map((t) => h("th", { scope: "col", text: t })))),
        deliveriesBody),
      deliveriesEmpty,
      h("div", { class: "actions" }, h("button", { type: "button", text: "Refresh", onclick: loadDeliveries }))),
  );

  function renderCounts() {
    const c = ctx.stream.counts;
    if (!c) return;
    for (const [status, n] of countCells) n.textContent = (c[status] || 0).toLocaleString();
  }
  const renderCountsSoon = onFrame(renderCounts);

  spaceApi.get().then((info) => {
    if (closed) return;
    created.textContent = fmtDate(info.createdAt);
    if (!ctx.stream.counts) ctx.stream.counts = info.counts;
    renderCounts();
    keysBody.replaceChildren(...info.keys.map((k) => h("tr", {},
      h("td", { text: k.inMemory ? `${k.name} (this page; in memory)` : k.name }),
      h("td", { class: "mono", text: k.key }),
      h("td", { text: k.scopes.join(" ") }),
      h("td", { text: fmtDate(k.createdAt) }))));
  }, (err) => toast(`Could not read the space: ${err.message}`, "error"));
  spaceApi.push().then((settings) => { if (!closed) showPush(settings); }, (err) => { pushError.textContent = err.message; });
  loadDeliveries();

  const unsubscribe = ctx.stream.subscribe((msg) => {
    renderCountsSoon();
    if (msg.type === "push_sent" || msg.type === "push_failed") addDelivery(msg);
    else if (msg.type === "connected" && msg.missed) loadDeliveries(); // events went by unseen
  });
  return () => {
    closed = true;
    unsubscribe();
  };
}
