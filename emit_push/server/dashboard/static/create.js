// Create jobs: the form builds the body of `POST /spaces/:spaceId/jobs` (shown as it is
// typed), one spec or an array of them.

import { jobs as jobsApi, space as spaceApi, spaceId } from "./api.js";
import { field, h, toast } from "./ui.js";

export function renderCreate(main, params, ctx) {
  const name = h("input", { type: "text", required: true, list: "new-job-names", autocomplete: "off", value: params.get("name") || "" });
  const names = h("datalist", { id: "new-job-names" });
  const payload = h("textarea", { rows: "8", spellcheck: "false", text: params.get("payload") || "{}" });
  const payloadError = h("span", { class: "error", role: "alert" });
  const delay = h("input", { type: "number", min: "0", step: "1", value: "0", inputmode: "numeric" });
  const retries = h("input", { type: "number", min: "0", max: "25", step: "1", value: "3", inputmode: "numeric" });
  const timeout = h("input", { type: "number", min: "1", max: "86400", step: "1", value: "300", inputmode: "numeric" });
  const count = h("input", { type: "number", min: "1", max: "1000", step: "1", value: "1", inputmode: "numeric" });
  const error = h("p", { class: "error", role: "alert" });
  const preview = h("pre", { class: "json", "aria-label": "The request body" });
  const submit = h("button", { type: "submit", class: "primary", text: "Create job" });

  name.id = "new-name";
  payload.id = "new-payload";
  delay.id = "new-delay";
  retries.id = "new-retries";
  timeout.id = "new-timeout";
  count.id = "new-count";

  function parsedPayload() {
    const text = payload.value.trim();
    if (!text) return { ok: true, value: null };
    try {
      return { ok: true, value: JSON.parse(text) };
    } catch (err) {
      return { ok: false, message: err.message };
    }
  }

  function spec() {
    const body = { name: name.value.trim() };
    const parsed = parsedPayload();
    if (parsed.ok && parsed.value !== null) body.payload = parsed.value;
    const r = Number(retries.value);
    if (retries.value !== "" && r !== 3) body.maxRetries = r;
    const t = Number(timeout.value);
    if (timeout.value !== "" && t !== 300) body.timeoutSeconds = t;
    const d = Number(delay.value);
    if (d > 0) body.scheduledFor = new Date(Date.now() + d * 1000).toISOString();
    return body;
  }

  function updatePreview() {
    const parsed = parsedPayload();
    payload.setAttribute("aria-invalid", String(!parsed.ok));
    payloadError.textContent = parsed.ok ? "" : `Not valid JSON: ${parsed.message}`;
    const n = Math.max(1, Number(count.value) || 1);
    const body = n > 1 ? `[${n} × ${JSON.stringify(spec())}]` : JSON.stringify(spec(), null, 2);
    preview.textContent = `POST /api/v1/spaces/${spaceId()}/jobs\n${body}`;
    submit.textContent = n > 1 ? `Create ${n} jobs` : "Create job";
  }

  const form = h(
    "form",
    {
      class: "card",
      novalidate: true,
      onsubmit: async (event) => {
        event.preventDefault();
        error.textContent = "";
        const parsed = parsedPayload();
        if (!name.value.trim()) { error.textContent = "A job needs a name."; name.focus(); return; }
        if (!parsed.ok) { payload.focus(); return; }
        const n = Math.min(1000, Math.max(1, Number(count.value) || 1));
        const body = spec();
        submit.disabled = true;
        try {
          const answer = await jobsApi.create(n > 1 ? Array.from({ length: n }, () => body) : body);
          if (Array.isArray(answer)) {
            toast(`Created ${answer.length} jobs`);
            ctx.navigate("#/");
          } else {
            toast(`Created ${body.name}: ${answer.status}`);
            ctx.navigate(`#/jobs/${encodeURIComponent(answer.id)}`);
          }
        } catch (err) {
          error.textContent = err.message;
        } finally {
          submit.disabled = false;
        }
      },
    },
    field("Name", name, "The job type, e.g. send-email: the handler registered for it runs it."),
    names,
    h("div", { class: "field" },
      h("label", { for: "new-payload", text: "Payload (JSON)" }), payload, payloadError),
    h("div", { class: "row" },
      field("Delay (seconds)", delay, "0: at once"),
      field("Max retries", retries, "0 to 25"),
      field("Timeout (seconds)", timeout, "1 to 86400"),
      field("How many", count, "1 to 1000, in one request")),
    h("div", { class: "actions" }, submit, error),
    h("details", {}, h("summary", { text: "The API call this makes" }), preview),
  );
  form.addEventListener("input", updatePreview);

  main.replaceChildren(h("h1", { text: "New job" }), form);
  updatePreview();
  name.focus();
  spaceApi.get().then(
    (info) => names.replaceChildren(...info.names.map((n) => h("option", { value: n }))),
    () => {},
  );
  return () => {};
}
