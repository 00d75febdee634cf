// The hub's REST API with the signed-in token. Every error becomes an ApiError with words a person
// can read (the API's own "message"), never a blank page.

const KEY = "ruffhub.token";

export const token = {
  get: () => localStorage.getItem(KEY),
  set: (value) => localStorage.setItem(KEY, value),
  clear: () => localStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, code, message, detail) {
    super(message);
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

export async function api(method, path, body, { auth = true, signOutOn401 = true } = {}) {
  const headers = { Accept: "application/json" };
  const bearer = token.get();
  if (auth && bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, "unreachable", "The hub cannot be reached. Is it running?");
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!response.ok) {
    const message = (data && (data.message || data.detail && (typeof data.detail === "string" ? data.detail : JSON.stringify(data.detail))))
      || `${response.status} ${response.statusText}`;
    if (response.status === 401 && signOutOn401) window.dispatchEvent(new CustomEvent("ruffhub:unauthorized"));
    throw new ApiError(response.status, data && data.error, message, data);
  }
  return data;
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body);
