// The public API, as any client calls it: JSON over fetch with the key in `x-api-key`,
// and WebSocket streams with the key as `?token=` (browsers cannot set headers there).

const SESSION_KEY = "emit-dashboard-key";
const state = { apiBase: "/api/v1", spaceId: null, key: null, onUnauthorized: null };

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function configure(config, onUnauthorized) {
  state.apiBase = config.apiBase;
  state.spaceId = config.spaceId;
  state.key = config.key || sessionStorage.getItem(SESSION_KEY);
  state.onUnauthorized = onUnauthorized;
}

export const spaceId = () => state.spaceId;
export const hasKey = () => Boolean(state.key);

/** A key typed by the user (the server did not hand one): this tab's session only. */
export function useKey(key) {
  state.key = key;
  sessionStorage.setItem(SESSION_KEY, key);
}

export function forgetKey() {
  state.key = null;
  sessionStorage.removeItem(SESSION_KEY);
}

function url(path, query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") params.set(name, value);
  }
  const qs = params.toString();
  return `${state.apiBase}${path}${qs ? `?${qs}` : ""}`;
}

export async function api(path, { method = "GET", body, query } = {}) {
  const headers = { "x-api-key": state.key || "" };
  const init = { method, headers, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    headers["content-type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url(path, query), init);
  } catch (err) {
    throw new ApiError(0, "network", `The server did not answer (${err.message})`);
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!response.ok) {
    const message = (data && (data.error || data.message)) || text || response.statusText;
    const error = new ApiError(response.status, (data && data.code) || "http_error", message);
    if (response.status === 401 && state.onUnauthorized) state.onUnauthorized(error);
    throw error;
  }
  return data;
}

export function wsUrl(path, query = {}) {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  return `${scheme}://${location.host}${url(path, { ...query, token: state.key })}`;
}

// The calls the pages make, named as the SDK names them.
export const jobs = {
  list: (query) => api(`/spaces/${state.spaceId}/jobs`, { query }),
  search: (query) => api(`/spaces/${state.spaceId}/jobs/search`, { query }),
  get: (id, query) => api(`/jobs/${encodeURIComponent(id)}`, { query }),
  logs: (id, query) => api(`/jobs/${encodeURIComponent(id)}/logs`, { query }),
  create: (spec) => api(`/spaces/${state.spaceId}/jobs`, { method: "POST", body: spec }),
  kill: (id, reason) =>
    api(`/jobs/${encodeURIComponent(id)}/kill`, { method: "POST", body: reason ? { reason } : {} }),
  repush: (ids) => api(`/spaces/${state.spaceId}/repush`, { method: "POST", body: { jobIds: ids } }),
};

export const space = {
  get: () => api(`/spaces/${state.spaceId}`),
  push: () => api(`/spaces/${state.spaceId}/push`),
  setPush: (settings) => api(`/spaces/${state.spaceId}/push`, { method: "PUT", body: settings }),
  deliveries: (limit = 20) => api(`/spaces/${state.spaceId}/deliveries`, { query: { limit } }),
};
