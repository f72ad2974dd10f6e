// Small DOM helpers and formatters shared by the pages. Text is always set as text
// (textContent), never parsed as HTML: job names, payloads and logs are untrusted.

export const STATUSES = ["scheduled", "pending", "delivered", "running", "completed", "dead", "killed"];
export const TERMINAL = new Set(["completed", "dead", "killed"]);
export const LIVE = new Set(["scheduled", "pending", "delivered", "running"]);
const GLYPHS = {
  scheduled: "◷", pending: "○", delivered: "◔", running: "▶",
  completed: "✓", dead: "✕", killed: "■",
};

/** h("a", {href: "#/", class: "x", onclick: fn}, "text", child) */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name === "text") {
      el.textContent = value;
    } else if (value === true) {
      el.setAttribute(name, "");
    } else {
      el.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** A status badge: glyph, word and colour (the word alone carries the meaning). */
export function statusBadge(status) {
  const el = h("span", { class: "status" });
  setStatus(el, status);
  return el;
}

export function setStatus(el, status) {
  if (el.dataset.status === status) return;
  el.dataset.status = status;
  el.className = `status s-${status}`;
  el.replaceChildren(h("span", { class: "glyph", "aria-hidden": "true", text: GLYPHS[status] || "?" }), status);
}

export function parseTs(iso) {
  return iso ? Date.parse(iso) : null;
}

export function fmtAge(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const hrs = Math.floor(m / 60);
  if (hrs < 48) return `${hrs}h ${m % 60}m`;
  return `${Math.floor(hrs / 24)}d ${hrs % 24}h`;
}

export function fmtDuration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 2 : 1)} s`;
  return fmtAge(ms);
}

export function fmtTime(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function fmtDate(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtTime(iso)}`;
}

export function fmtPercent(p) {
  if (p === null || p === undefined) return "";
  return `${Math.round(p * 10) / 10}%`;
}

const TOKEN = /("(?:\\.|[^"\\])*")(\s*:)?|(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)|\b(true|false|null)\b/g;

/** Formatted JSON, coloured by token (text nodes only). */
export function jsonView(value, label) {
  const text = value === undefined ? "undefined" : JSON.stringify(value, null, 2);
  const pre = h("pre", { class: "json", tabindex: "0", "aria-label": label || "JSON" });
  if (text.length > 200000) {
    pre.textContent = text; // too big to colour cheaply
    return pre;
  }
  let last = 0;
  for (const m of text.matchAll(TOKEN)) {
    if (m.index > last) pre.append(text.slice(last, m.index));
    const cls = m[1] ? (m[2] ? "j-key" : "j-str") : m[3] ? "j-num" : "j-lit";
    pre.append(h("span", { class: cls, text: m[1] || m[3] || m[4] }));
    if (m[2]) pre.append(m[2]);
    last = m.index + m[0].length;
  }
  pre.append(text.slice(last));
  return pre;
}

export function toast(message, kind = "info") {
  const box = document.getElementById("toast");
  const p = h("p", { class: kind === "error" ? "error" : "", text: message });
  box.append(p);
  setTimeout(() => p.remove(), kind === "error" ? 8000 : 4000);
}

export function notice(message, kind = "warn", ...extra) {
  const box = document.getElementById("notice");
  if (!message) {
    box.hidden = true;
    box.replaceChildren();
    return;
  }
  box.className = kind === "error" ? "notice error" : "notice";
  box.replaceChildren(message, ...extra);
  box.hidden = false;
}

/** Call fn at most once per `ms`, after the last call (trailing). */
export function debounce(fn, ms) {
  let timer = null;
  const wrapped = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => { timer = null; fn(...args); }, ms);
  };
  wrapped.cancel = () => clearTimeout(timer);
  return wrapped;
}

/** Batch DOM work to the next frame. */
export function onFrame(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; fn(); });
  };
}

export function field(labelText, input, help) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  const children = [h("label", { for: id, text: labelText }), input];
  if (help) {
    const helpId = `${id}-help`;
    input.setAttribute("aria-describedby", helpId);
    children.push(h("small", { id: helpId, text: help }));
  }
  return h("div", { class: "field" }, ...children);
}
