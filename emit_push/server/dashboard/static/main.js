// The dashboard's entry point: its key, the shared space stream, and a hash router.
// Pages are modules exporting `render(main, params, ctx)`, which returns a cleanup.

import { configure, forgetKey, hasKey, spaceId, useKey } from "./api.js";
import { renderCreate } from "./create.js";
import { renderJob } from "./job.js";
import { renderJobs } from "./jobs.js";
import { renderSpace } from "./space.js";
import { SpaceStream } from "./stream.js";
import { field, h, notice } from "./ui.js";

const config = JSON.parse(document.getElementById("emit-config").textContent);
const main = document.getElementById("main");
const live = document.getElementById("live");
let cleanup = null;

configure(config, () => {
  notice(
    "The server refused this page's key: it was restarted, or the key is wrong. ",
    "error",
    h("button", { type: "button", onclick: () => { forgetKey(); location.reload(); }, text: "Reload" }),
  );
});

const LIVE_TEXT = {
  connecting: "connecting…", live: "live", reconnecting: "reconnecting…", refused: "offline",
};
const stream = new SpaceStream({
  onState: (state) => {
    live.textContent = LIVE_TEXT[state] || state;
    live.className = state === "live" ? "live on" : state === "refused" ? "live off" : "live";
  },
  onRefused: (code, reason) => notice(`The space stream refused this page's key: ${reason || code}`, "error"),
});

const ctx = {
  stream,
  config,
  navigate: (hash) => { location.hash = hash; },
};

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  return { path, params: new URLSearchParams(query) };
}

function route() {
  if (cleanup) { cleanup(); cleanup = null; }
  if (!hasKey()) {
    renderKeyForm();
    return;
  }
  const { path, params } = parseHash();
  let nav = "jobs";
  const job = path.match(/^\/jobs\/([^/]+)$/);
  if (job) {
    cleanup = renderJob(main, decodeURIComponent(job[1]), ctx);
  } else if (path === "/new") {
    nav = "new";
    cleanup = renderCreate(main, params, ctx);
  } else if (path === "/space") {
    nav = "space";
    cleanup = renderSpace(main, params, ctx);
  } else {
    cleanup = renderJobs(main, params, ctx);
  }
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (a.dataset.nav === nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

function renderKeyForm() {
  const input = h("input", { type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: (event) => {
        event.preventDefault();
        useKey(input.value.trim());
        stream.start();
        route();
      },
    },
    h("h1", { text: "An API key, please" }),
    h("p", {
      text:
        "This server does not hand its dashboard a key unless it is reached on loopback " +
        `(localhost). Paste a key of space ${spaceId()}: jobs:read to watch; jobs:create, ` +
        "jobs:kill and space:admin to act. It stays in this tab's session storage.",
    }),
    field("API key", input),
    h("button", { class: "primary", type: "submit", text: "Use this key" }),
  );
  main.replaceChildren(form);
  input.focus();
}

document.addEventListener("keydown", (event) => {
  const target = event.target;
  const typing = target instanceof HTMLElement &&
    (target.matches("input, textarea, select") || target.isContentEditable);
  if (event.key === "/" && !typing) {
    const search = document.querySelector("[data-shortcut='/']");
    if (search) { event.preventDefault(); search.focus(); }
  } else if (event.key === "Escape" && !typing && location.hash.startsWith("#/jobs/")) {
    history.length > 1 ? history.back() : ctx.navigate("#/");
  }
});

window.addEventListener("hashchange", () => { route(); main.focus({ preventScroll: true }); });
if (hasKey()) stream.start();
route();
