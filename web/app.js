// medialens web page: search moments, open them at the right place, watch and manage assets.
// Plain browser JavaScript, no build step and no third-party code: it only talks to the API
// named in <meta name="medialens-api"> and to the media URLs the API hands out. common.js (loaded
// first) holds what the asset view shares with it.
"use strict";

const PAGE_SIZE = 10;
const ASSET_PAGE = 50;
const POLL_MS = 2000;
const MAX_RECORDING_MS = 8000; // a spoken question; the API takes up to 30 s

const state = {
  search: null, // {query, mode, mediaType} of the results on screen
  nextCursor: null,
  assetsCursor: null,
  pollTimer: null,
  recorder: null, // the MediaRecorder while a spoken question is being recorded
  awaiting: new Set(), // asset ids of this page's uploads not yet listed as finished
};

// --- formatting -----------------------------------------------------------------------------

function where(hit) {
  if (hit.start !== null && hit.start !== undefined) {
    const end = hit.end !== null && hit.end !== undefined ? hit.end : hit.start;
    return `${clock(hit.start)}–${clock(end)}`;
  }
  if (hit.page) return `page ${hit.page}`;
  return "";
}

// The snippet as text nodes and <mark>s: the text itself is never parsed as HTML.
function highlighted(text, highlights) {
  const fragment = document.createDocumentFragment();
  let position = 0;
  for (const { start, end } of [...highlights].sort((a, b) => a.start - b.start)) {
    if (start < position) continue;
    fragment.append(text.slice(position, start), element("mark", { text: text.slice(start, end) }));
    position = end;
  }
  fragment.append(text.slice(position));
  return fragment;
}

function thumbnail(hit) {
  if (hit.thumbnail_url) {
    return element("img", { class: "thumb", src: hit.thumbnail_url, alt: "", loading: "lazy" });
  }
  if (hit.media_type === "video" && hit.media_url) {
    // The frame at the moment's start, via a media fragment: the keyframe without an extra file.
    return element("video", { class: "thumb", src: `${hit.media_url}#t=${hit.start || 0}`, preload: "metadata", muted: true, "aria-hidden": "true" });
  }
  const label = hit.media_type === "document" ? (hit.file_name.split(".").pop() || "doc").slice(0, 4) : hit.media_type;
  return element("span", { class: `thumb thumb-icon thumb-${hit.media_type}`, "aria-hidden": "true", text: label });
}

// --- search ---------------------------------------------------------------------------------

function searchParams(search, cursor) {
  const params = new URLSearchParams({ query: search.query, mode: search.mode, k: String(PAGE_SIZE) });
  if (search.mediaType) params.append("media_type", search.mediaType);
  if (cursor) params.set("cursor", cursor);
  return params;
}

async function runSearch(search, cursor) {
  const status = $("#search-status");
  status.classList.remove("error");
  status.textContent = cursor ? "Loading more…" : "Searching…";
  try {
    const { body } = await api(`search?${searchParams(search, cursor)}`);
    showPage(search, body, cursor, "");
  } catch (error) {
    status.classList.add("error");
    status.textContent = describeError(error);
  }
}

// The search on screen as the page's address, so it can be bookmarked or shared (/?q=…&mode=…).
function rememberSearch(search) {
  const params = new URLSearchParams({ q: search.query });
  if (search.mode !== "hybrid") params.set("mode", search.mode);
  if (search.mediaType) params.set("media_type", search.mediaType);
  history.replaceState(null, "", `${location.pathname}?${params}`);
}

// A shared link's search: fills the form and runs it.
function searchFromAddress() {
  const params = new URLSearchParams(location.search);
  const query = (params.get("q") || "").trim();
  if (!query) return;
  const mode = params.get("mode");
  const mediaType = params.get("media_type");
  if (mode && [...$("#mode").options].some((option) => option.value === mode)) $("#mode").value = mode;
  if (mediaType && [...$("#media-type").options].some((option) => option.value === mediaType)) {
    $("#media-type").value = mediaType;
  }
  $("#q").value = query;
  runSearch({ query, mode: $("#mode").value, mediaType: $("#media-type").value }, null);
}

// Rendering time is recorded as the performance measure "medialens:results" (devtools show it).
function showPage(search, body, cursor, prefix) {
  const started = performance.now();
  if (!cursor) $("#results").replaceChildren();
  if (!cursor) rememberSearch(search);
  $("#results").append(...body.hits.map((hit, index) => resultItem(hit, body.offset + index + 1)));
  state.search = search;
  state.nextCursor = body.next_cursor;
  $("#more").hidden = !body.next_cursor;
  const shown = $("#results").children.length;
  $("#search-status").textContent =
    prefix +
    (shown
      ? `${shown} moment${shown === 1 ? "" : "s"} for “${search.query}” (${body.mode}, ${Math.round(body.took_ms)} ms).`
      : `No moments match “${search.query}”.`);
  performance.measure("medialens:results", { start: started });
}

// --- asking out loud --------------------------------------------------------------------------

const RECORDING_TYPES = ["audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus", "audio/mp4"];

async function toggleRecording() {
  const button = $("#ask");
  const status = $("#search-status");
  if (state.recorder) {
    state.recorder.stop();
    return;
  }
  status.classList.remove("error");
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    status.classList.add("error");
    status.textContent = "This browser cannot record audio: type the question instead.";
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (error) {
    status.classList.add("error");
    status.textContent = `The microphone is not available (${error.message || error.name}).`;
    return;
  }
  const mimeType = RECORDING_TYPES.find((type) => MediaRecorder.isTypeSupported(type)) || "";
  const recorder = new MediaRecorder(stream, mimeType ? { mimeType } : {});
  const chunks = [];
  recorder.addEventListener("dataavailable", (event) => event.data.size && chunks.push(event.data));
  recorder.addEventListener("stop", () => {
    stream.getTracks().forEach((track) => track.stop());
    clearTimeout(state.recordingTimer);
    state.recorder = null;
    button.setAttribute("aria-pressed", "false");
    button.textContent = "Ask out loud";
    const type = (recorder.mimeType || mimeType || "audio/webm").split(";")[0];
    searchByVoice(new Blob(chunks, { type }));
  });
  state.recorder = recorder;
  recorder.start();
  button.setAttribute("aria-pressed", "true");
  button.textContent = "Stop and search";
  status.textContent = `Listening… click “Stop and search” when you are done (at most ${MAX_RECORDING_MS / 1000} s).`;
  state.recordingTimer = setTimeout(() => recorder.state === "recording" && recorder.stop(), MAX_RECORDING_MS);
}

async function searchByVoice(recording) {
  const status = $("#search-status");
  const search = { query: "", mode: $("#mode").value, mediaType: $("#media-type").value };
  const params = new URLSearchParams({ mode: search.mode, k: String(PAGE_SIZE) });
  if (search.mediaType) params.append("media_type", search.mediaType);
  status.textContent = "Transcribing your question…";
  try {
    const response = await fetch(`${API}search/voice?${params}`, {
      method: "POST",
      headers: { Accept: "application/json", "Content-Type": recording.type || "audio/webm" },
      body: recording,
    });
    let body = null;
    try {
      body = await response.json();
    } catch (_) {
      body = null;
    }
    if (!response.ok) throw new ApiError(response.status, body);
    search.query = body.heard.text;
    $("#q").value = body.heard.text;
    showPage(search, body, null, `Heard “${body.heard.text}”. `);
  } catch (error) {
    status.classList.add("error");
    status.textContent = describeError(error);
  }
}

// How a moment was found, in words: what was said, written or shown.
const FOUND_AS = {
  speech: "said",
  subtitle: "subtitle",
  screen_text: "on screen",
  image_text: "text in image",
  document: "text",
  visual: "shown",
  audio_event: "heard",
};

function resultItem(hit, rank) {
  const open = element(
    "button",
    { type: "button", class: "hit-open", "data-moment-id": hit.moment_id, "data-asset-id": hit.asset_id },
    thumbnail(hit),
    element(
      "span",
      { class: "hit-body" },
      element(
        "span",
        { class: "hit-head" },
        badge(hit.media_type),
        element("span", { class: "file", text: hit.file_name }),
        element("span", { class: "where", text: where(hit) }),
        element("span", { class: "where", title: "found as", text: FOUND_AS[hit.modality] || hit.modality }),
        hit.language ? element("span", { class: "where", lang: hit.language, title: "language", text: hit.language }) : null,
        element("span", { class: "score", text: `score ${hit.score.toFixed(2)}` }),
      ),
      element("span", { class: "snippet" }, highlighted(hit.snippet, hit.highlights)),
    ),
  );
  open.addEventListener("click", () => openMoment(hit, open));
  const details = element("a", { class: "hit-asset", href: assetLink(hit), text: "Open in asset view" });
  details.setAttribute("aria-label", `Open ${hit.file_name} in the asset view ${where(hit) ? `at ${where(hit)}` : ""}`.trim());
  return element("li", { class: "hit", "data-rank": String(rank) }, open, details);
}

// A stable link to the asset view at a moment: ?t=<seconds> for media, #page=<n> for documents.
function assetLink(hit) {
  const base = `assets/${encodeURIComponent(hit.asset_id)}`;
  if (hit.start !== null && hit.start !== undefined) return `${base}?t=${hit.start}`;
  return hit.page ? `${base}#page=${hit.page}` : base;
}

// --- the player -----------------------------------------------------------------------------

function openMoment(hit, trigger) {
  const viewer = $("#viewer");
  document.querySelectorAll(".hit-open[aria-current]").forEach((b) => b.removeAttribute("aria-current"));
  if (trigger) trigger.setAttribute("aria-current", "true");
  let player = null;
  if ((hit.media_type === "audio" || hit.media_type === "video") && hit.media_url) {
    player = element(hit.media_type, {
      id: "player",
      controls: true,
      preload: "auto",
      src: hit.media_url,
      "aria-label": `${hit.file_name} from ${clock(hit.start || 0)}`,
      "data-start": String(hit.start || 0),
    });
    const start = hit.start || 0;
    // Seek once the browser knows the duration; play() may be refused without a user gesture.
    player.addEventListener(
      "loadedmetadata",
      () => {
        player.currentTime = start;
        player.play().catch(() => {});
      },
      { once: true },
    );
  } else if (hit.media_type === "image" && hit.media_url) {
    player = element("img", { id: "image-view", src: hit.media_url, alt: hit.file_name });
  } else if (hit.open_url) {
    const pdf = /\.pdf$/i.test(hit.file_name);
    player = element("iframe", {
      id: "doc-frame",
      title: `${hit.file_name}${hit.page ? `, page ${hit.page}` : ""}`,
      src: hit.open_url,
      // Uploaded pages must not run scripts; a sandbox would also stop the PDF viewer.
      sandbox: pdf ? null : "",
    });
  }
  viewer.replaceChildren(player || element("p", { class: "placeholder", text: "This file cannot be shown here." }));
  if (hit.narration_url && hit.narration_start !== null && hit.narration_start !== undefined) {
    viewer.append(narrationPlayer(hit));
  }
  const caption = $("#viewer-caption");
  caption.replaceChildren(
    element("p", { class: "caption-head" }, badge(hit.media_type), element("strong", { text: hit.file_name }), ` ${where(hit)}`),
    element("p", { class: "caption-text" }, highlighted(hit.snippet, hit.highlights)),
  );
}

// A narrated document's passage: its narration from where the passage is said, the passage's
// words highlighted as they are spoken (from the speech marks).
function narrationPlayer(hit) {
  const words = element("p", { class: "spoken", "aria-label": "The passage as it is spoken" });
  const audio = element("audio", {
    id: "narration",
    controls: true,
    preload: "auto",
    src: hit.narration_url,
    "aria-label": `Narration of ${hit.file_name} from ${clock(hit.narration_start)}`,
    "data-start": String(hit.narration_start),
  });
  audio.addEventListener(
    "loadedmetadata",
    () => {
      audio.currentTime = hit.narration_start;
      audio.play().catch(() => {});
    },
    { once: true },
  );
  audio.addEventListener("timeupdate", () => {
    const now = audio.currentTime * 1000;
    words.querySelectorAll(".word").forEach((word) => {
      const speaking = Number(word.dataset.time) <= now && now < Number(word.dataset.end);
      word.classList.toggle("speaking", speaking);
    });
  });
  loadSpokenWords(hit, words);
  return element("div", { class: "narration" }, element("p", { class: "narration-head", text: "Listen from here" }), audio, words);
}

async function loadSpokenWords(hit, target) {
  try {
    const { body } = await api(`assets/${encodeURIComponent(hit.asset_id)}?moments_limit=0`);
    const marks = body.artifacts.find((artifact) => artifact.name === "speech_marks");
    if (!marks || !marks.url) return;
    const text = await (await fetch(marks.url)).text();
    const from = hit.narration_start * 1000;
    const to = (hit.narration_end ?? hit.narration_start) * 1000;
    const spans = [];
    for (const line of text.split("\n")) {
      if (!line) continue;
      const mark = JSON.parse(line);
      if (mark.type !== "word" || mark.time < from - 1 || mark.time > to + 1) continue;
      spans.push(element("span", { class: "word", "data-time": String(mark.time), "data-end": String(mark.end_time), text: mark.value }), " ");
    }
    target.replaceChildren(...spans);
  } catch (_) {
    target.textContent = ""; // the audio still plays; only the highlighting is missing
  }
}

// --- assets ---------------------------------------------------------------------------------

function assetRow(asset) {
  const terminal = asset.status === "SUCCEEDED" || asset.status === "FAILED";
  const reprocess = element("button", { type: "button", class: "small", disabled: !terminal, "aria-label": `Reprocess ${asset.file_name}`, text: "Reprocess" });
  const remove = element("button", { type: "button", class: "small danger", disabled: !terminal, "aria-label": `Delete ${asset.file_name}`, text: "Delete" });
  reprocess.addEventListener("click", () => assetAction(asset, "reprocess"));
  remove.addEventListener("click", () => assetAction(asset, "delete"));
  const failed = asset.status === "FAILED";
  const note = failed ? asset.error_reason || asset.error_code || "failed" : asset.stalled || asset.stage || "";
  const noteClass = failed ? "reason" : asset.stalled ? "stalled" : "stage";
  const file = element("a", { href: `assets/${encodeURIComponent(asset.asset_id)}`, text: asset.file_name });
  return element(
    "tr",
    { "data-asset-id": asset.asset_id, "data-status": asset.status, ...(asset.stalled ? { "data-stalled": "" } : {}) },
    element("td", { class: "file-cell", title: asset.source }, file),
    element("td", {}, asset.media_type ? badge(asset.media_type) : "–"),
    element("td", {}, statusBadge(asset.status)),
    element("td", { class: "num", text: String(asset.moment_count) }),
    element("td", { class: noteClass, text: note }),
    element("td", { class: "actions" }, reprocess, remove),
  );
}

// `notice`: what the last action did, shown before the summary of the reloaded table.
async function loadAssets(more = false, notice = "") {
  const status = $("#assets-status");
  status.classList.remove("error");
  const params = new URLSearchParams({ limit: String(ASSET_PAGE) });
  const filter = $("#status-filter").value;
  if (filter) params.set("status", filter);
  if (more && state.assetsCursor) params.set("cursor", state.assetsCursor);
  try {
    const { body } = await api(`assets?${params}`);
    const rows = body.assets.map(assetRow);
    if (more) $("#assets tbody").append(...rows);
    else $("#assets tbody").replaceChildren(...rows);
    state.assetsCursor = body.next_cursor;
    $("#assets-more").hidden = !body.next_cursor;
    const all = [...document.querySelectorAll("#assets tbody tr")];
    const counts = {};
    all.forEach((row) => (counts[row.dataset.status] = (counts[row.dataset.status] || 0) + 1));
    const stalled = all.filter((row) => row.dataset.stalled !== undefined).length;
    const summary = all.length
      ? `${all.length} asset${all.length === 1 ? "" : "s"}: ${Object.entries(counts).map(([s, n]) => `${n} ${s.toLowerCase()}`).join(", ")}.` +
        (stalled ? ` ${stalled} waiting and not moving: see their rows.` : "")
      : "No assets yet. Ingest files with `medialens ingest <folder>`.";
    status.textContent = notice ? `${notice} ${summary}` : summary;
    // An upload is admitted a moment after it lands: keep polling until each one is listed, finished.
    for (const row of all) {
      if (row.dataset.status === "SUCCEEDED" || row.dataset.status === "FAILED") state.awaiting.delete(row.dataset.assetId);
    }
    const active = all.some((row) => row.dataset.status === "QUEUED" || row.dataset.status === "RUNNING");
    schedulePoll(active || state.awaiting.size > 0);
  } catch (error) {
    status.classList.add("error");
    status.textContent = describeError(error);
  }
}

function schedulePoll(active) {
  clearTimeout(state.pollTimer);
  if (active) state.pollTimer = setTimeout(() => loadAssets(false), POLL_MS);
}

async function assetAction(asset, action) {
  const status = $("#assets-status");
  status.classList.remove("error");
  if (action === "delete" && !window.confirm(`Delete ${asset.file_name}? Its moments and derived files are removed; the source file stays.`)) {
    return;
  }
  try {
    let notice;
    if (action === "delete") {
      const { body } = await api(`assets/${encodeURIComponent(asset.asset_id)}`, { method: "DELETE" });
      notice = `Deleted ${asset.file_name}: ${body.moments_removed} moments, ${body.artifacts_removed} files.`;
    } else {
      const { body } = await api(`assets/${encodeURIComponent(asset.asset_id)}/reprocess`, { method: "POST" });
      notice = `Reprocessing ${asset.file_name} (attempt ${body.attempt}).`;
    }
    await loadAssets(false, notice);
    const row = document.querySelector(`#assets tr[data-asset-id="${CSS.escape(asset.asset_id)}"] button`);
    (row || $("#refresh")).focus(); // keep keyboard users where they were
  } catch (error) {
    status.classList.add("error");
    status.textContent = describeError(error);
  }
}

// --- health ---------------------------------------------------------------------------------

async function checkHealth() {
  const health = $("#health");
  try {
    const { body } = await api("health", { accept: [503] });
    const failed = Object.entries(body.checks).filter(([, check]) => !check.ok);
    health.className = failed.length ? "health health-bad" : "health health-ok";
    health.textContent = failed.length
      ? `Unavailable: ${failed.map(([name, check]) => `${name} (${check.detail})`).join(", ")}`
      : `API ready: ${body.checks.index.detail}`;
  } catch (error) {
    health.className = "health health-bad";
    health.textContent = describeError(error);
  }
}

// --- uploads --------------------------------------------------------------------------------

// Each file: ask the API for a ticket (POST uploads), send the bytes where it says (a PUT to
// `medialens serve`; on AWS a presigned POST or presigned parts straight to the drop bucket), then
// confirm it (POST uploads/complete), which names the asset it becomes. One bar per file.
const PARALLEL_PARTS = 3;

function uploadFiles(files) {
  for (const file of files) {
    const bar = element("progress", { max: "100", value: "0", "aria-label": `Uploading ${file.name}` });
    const outcome = element("span", { class: "upload-state", text: "uploading…" });
    const item = element("li", { class: "upload", "data-file": file.name }, element("span", { class: "file", text: file.name }), bar, outcome);
    $("#uploads").append(item);
    uploadFile(file, (fraction) => (bar.value = Math.round(100 * fraction)))
      .then((uploaded) => {
        state.awaiting.add(uploaded.asset_id);
        bar.value = 100;
        item.dataset.state = "uploaded";
        item.dataset.assetId = uploaded.asset_id;
        outcome.textContent = "uploaded: analysing";
        loadAssets(false, `Uploaded ${file.name}.`);
      })
      .catch((error) => {
        item.dataset.state = "failed";
        outcome.classList.add("error");
        outcome.textContent = error instanceof ApiError ? error.message : `failed: ${error.message}`;
      });
  }
}

async function uploadFile(file, progress) {
  const { body: ticket } = await api("uploads", {
    method: "POST",
    body: JSON.stringify({ name: file.name, size: file.size }),
  });
  const completion = { key: ticket.key, size: file.size };
  if (ticket.method === "PUT") {
    await send("PUT", ticket.url, file, ticket.headers, progress);
  } else if (ticket.method === "POST") {
    const form = new FormData();
    for (const [name, value] of Object.entries(ticket.fields)) form.append(name, value);
    form.append("file", file); // S3 reads the fields first: the file goes last
    await send("POST", ticket.url, form, {}, progress);
  } else {
    try {
      completion.upload_id = ticket.upload_id;
      completion.parts = await sendParts(file, ticket, progress);
    } catch (error) {
      api("uploads/abort", { method: "POST", body: JSON.stringify({ key: ticket.key, upload_id: ticket.upload_id }) }).catch(() => {});
      throw error;
    }
  }
  const { body } = await api("uploads/complete", { method: "POST", body: JSON.stringify(completion) });
  return body;
}

// The parts of a multipart ticket, a few at a time; each answer's ETag completes the upload.
async function sendParts(file, ticket, progress) {
  const sent = new Map(); // part number → bytes sent so far
  const report = () => progress([...sent.values()].reduce((a, b) => a + b, 0) / file.size);
  const queue = [...ticket.parts];
  const done = [];
  async function worker() {
    for (let part = queue.shift(); part; part = queue.shift()) {
      const start = (part.part_number - 1) * ticket.part_size;
      const request = await send("PUT", part.url, file.slice(start, start + ticket.part_size), {}, (fraction) => {
        sent.set(part.part_number, fraction * Math.min(ticket.part_size, file.size - start));
        report();
      });
      const etag = request.getResponseHeader("ETag");
      if (!etag) throw new Error("the storage did not name the part (ETag not readable: check the bucket's CORS)");
      done.push({ part_number: part.part_number, etag });
    }
  }
  await Promise.all(Array.from({ length: Math.min(PARALLEL_PARTS, queue.length) }, worker));
  return done.sort((a, b) => a.part_number - b.part_number);
}

// One request with upload progress; resolves with the request when the answer is 2xx.
function send(method, url, body, headers, progress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(method, url);
    for (const [name, value] of Object.entries(headers)) request.setRequestHeader(name, value);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) progress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      if (request.status >= 200 && request.status < 300) return resolve(request);
      let body = null;
      try {
        body = JSON.parse(request.responseText);
      } catch (_) {
        body = null;
      }
      reject(body && body.error ? new ApiError(request.status, body) : new Error(`the storage answered HTTP ${request.status}`));
    });
    request.addEventListener("error", () => reject(new Error("the storage could not be reached")));
    request.send(body);
  });
}

// --- wiring ---------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("#search-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const query = $("#q").value.trim();
    if (!query) {
      $("#search-status").textContent = "Type what was said or shown first.";
      $("#q").focus();
      return;
    }
    runSearch({ query, mode: $("#mode").value, mediaType: $("#media-type").value }, null);
  });
  $("#more").addEventListener("click", () => state.search && runSearch(state.search, state.nextCursor));
  $("#ask").addEventListener("click", toggleRecording);
  $("#upload-files").addEventListener("change", (event) => {
    uploadFiles([...event.target.files]);
    event.target.value = "";
  });
  const pane = $(".assets-pane");
  pane.addEventListener("dragover", (event) => {
    event.preventDefault();
    pane.classList.add("dropping");
  });
  pane.addEventListener("dragleave", () => pane.classList.remove("dropping"));
  pane.addEventListener("drop", (event) => {
    event.preventDefault();
    pane.classList.remove("dropping");
    uploadFiles([...event.dataTransfer.files]);
  });
  $("#refresh").addEventListener("click", () => loadAssets(false));
  $("#status-filter").addEventListener("change", () => loadAssets(false));
  $("#assets-more").addEventListener("click", () => loadAssets(true));
  checkHealth();
  loadAssets(false);
  searchFromAddress();
});
