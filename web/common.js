// What both pages of medialens share: the API client, its error shape, and small DOM helpers.
// Loaded before app.js (search and assets) and asset.js (one asset's view).
"use strict";

const API = document.querySelector('meta[name="medialens-api"]').content;

const $ = (selector) => document.querySelector(selector);

// --- API ------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const detail = body && body.error ? body.error : null;
    super(detail ? detail.message : `HTTP ${status}`);
    this.status = status;
    this.code = detail ? detail.code : "http_error";
    this.fields = detail ? detail.fields : [];
  }
}

// `accept`: error statuses whose body the caller reads itself (/health answers 503 with a report).
async function api(path, { accept = [], ...options } = {}) {
  const response = await fetch(API + path, {
    ...options,
    headers: { Accept: "application/json", ...(options.body ? { "Content-Type": "application/json" } : {}) },
  });
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok && !accept.includes(response.status)) {
    throw new ApiError(response.status, body);
  }
  return { status: response.status, body };
}

function describeError(error) {
  if (!(error instanceof ApiError)) return `The API could not be reached (${error.message}).`;
  if (error.fields && error.fields.length) {
    return `${error.message}: ${error.fields.map((f) => `${f.field || f.location} ${f.message}`).join("; ")}`;
  }
  return error.message;
}

// --- DOM and formatting ----------------------------------------------------------------------

function clock(seconds) {
  const whole = Math.max(0, seconds);
  const minutes = Math.floor(whole / 60);
  const rest = (whole - minutes * 60).toFixed(1).padStart(4, "0");
  return `${minutes}:${rest}`;
}

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function badge(mediaType) {
  const kind = mediaType || "unknown";
  return element("span", { class: `badge badge-${kind}`, text: kind });
}

function statusBadge(status) {
  return element("span", { class: `status-badge status-${status.toLowerCase()}`, text: status });
}
