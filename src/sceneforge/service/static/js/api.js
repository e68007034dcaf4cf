// The service's JSON API, with the token when the service has one.
//
// The token is asked for once (on the first 401) and kept in sessionStorage for this tab's
// session. Media elements (<img>, <audio>, <video>) cannot send a header, so the token also
// goes into a SameSite=Strict cookie for /files only: the service accepts it there for reads.

const TOKEN_KEY = "sceneforge.token";
let askToken = async () => { throw new ApiError(401, "this service needs a token", []); };
let asking = null;

/** An answer that was not 2xx: `status`, `detail` and `problems` (one line each). */
export class ApiError extends Error {
  constructor(status, detail, problems) {
    super(detail);
    this.status = status;
    this.detail = detail;
    this.problems = problems;
  }
}

/** What went wrong, one line each: an answer's problems, else the error's message (the one way errors
 * become text on the page). */
export function errorLines(err) {
  if (err instanceof ApiError) return err.problems.length ? err.problems : [err.detail];
  return [String((err && err.message) || err)];
}

export function errorText(err) {
  return errorLines(err).join("\n");
}

/** Set how the page asks for a token: `fn(wrong)` resolves with the token typed in. */
export function setTokenPrompt(fn) {
  askToken = fn;
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Keep the token for this session (and the /files cookie; called again on every page load). */
export function keepToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value);
  document.cookie = `sceneforge_token=${encodeURIComponent(value)}; path=/files; SameSite=Strict`;
}

/** Headers for a request: the token, when there is one. */
export function authHeaders(extra = {}) {
  const value = token();
  return value ? {...extra, Authorization: `Bearer ${value}`} : extra;
}

/** Ask for the token (one prompt at a time, however many requests were refused). */
export async function needToken() {
  if (!asking) {
    const wrong = Boolean(token());
    asking = askToken(wrong).then(keepToken).finally(() => { asking = null; });
  }
  return asking;
}

async function problemOf(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  const detail = (body && typeof body.detail === "string") ? body.detail : `${resp.status} ${resp.statusText}`;
  const problems = (body && Array.isArray(body.problems)) ? body.problems.map(String) : [detail];
  return new ApiError(resp.status, detail, problems);
}

/**
 * fetch() with the token; a 401 asks for it and tries again. `body` is sent as is when it is
 * a string or a Blob, else as JSON. Resolves with the decoded JSON (or null), throws ApiError.
 */
export async function api(method, path, body = undefined, options = {}) {
  for (;;) {
    const init = {method, headers: authHeaders(options.headers || {}), signal: options.signal};
    if (body !== undefined) {
      const raw = typeof body === "string" || body instanceof Blob;
      init.body = raw ? body : JSON.stringify(body);
      if (!init.headers["Content-Type"]) init.headers["Content-Type"] = raw && body.type ? body.type : "application/json";
    }
    const resp = await fetch(path, init);
    if (resp.status === 401) {
      await needToken();
      continue;
    }
    if (!resp.ok) throw await problemOf(resp);
    const type = resp.headers.get("Content-Type") || "";
    return type.includes("json") ? resp.json() : resp.text();
  }
}

/** The text of a file under /files (subtitles), or "" when it cannot be read. */
export async function fileText(url, signal) {
  try {
    return await api("GET", url, undefined, {signal});
  } catch {
    return "";
  }
}

/** The path of a topic's API (slugs may hold Korean letters: always encoded). */
export function topicPath(slug, rest = "") {
  return `/api/topics/${encodeURIComponent(slug)}${rest}`;
}
