// medialens asset view (/assets/<id>): the file in a player or viewer, its transcript word by word
// (click a word to play from it), shots, keyframes, captions, on-screen text and further lanes on
// one timeline, and the analysis itself: status, time per stage, models, files and events.
// ?t=<seconds> starts the player there; #page=<n> opens a document at that page.
"use strict";

const ASSET_ID = decodeURIComponent(location.pathname.replace(/\/+$/, "").split("/").pop());
const ASSET_POLL_MS = 2000;
const TERMINAL = new Set(["SUCCEEDED", "FAILED"]);

const view = {
  asset: null,
  timeline: null,
  player: null, // the <video>/<audio> element, when the asset has one
  wordStarts: [], // start of each transcript word, in order, for finding the one being said
  wordNodes: [],
  currentWord: null,
  duration: 0,
  pollTimer: null,
};

// --- loading --------------------------------------------------------------------------------

async function loadAsset(firstTime) {
  const message = $("#asset-message");
  message.classList.remove("error");
  try {
    const path = `assets/${encodeURIComponent(ASSET_ID)}`;
    const [{ body: asset }, { body: timeline }] = await Promise.all([
      api(`${path}?moments_limit=1000`),
      api(`${path}/timeline`),
    ]);
    const changed = !view.asset || view.asset.status !== asset.status || view.asset.updated_at !== asset.updated_at;
    view.asset = asset;
    view.timeline = timeline;
    if (firstTime) showMedia(asset);
    if (firstTime || changed) {
      showTitle(asset);
      showTranscript(asset, timeline);
      showTimeline(timeline);
      showDetails(asset, timeline);
    }
    clearTimeout(view.pollTimer);
    if (!TERMINAL.has(asset.status)) view.pollTimer = setTimeout(() => loadAsset(false), ASSET_POLL_MS);
  } catch (error) {
    message.classList.add("error");
    message.textContent =
      error instanceof ApiError && error.status === 404
        ? "There is no such asset (it may have been deleted or replaced by a newer upload)."
        : describeError(error);
    $("#asset-title").textContent = "Asset not available";
    if (firstTime) $("#asset-viewer").replaceChildren(element("p", { class: "placeholder", text: "Nothing to show." }));
    $("#transcript").replaceChildren();
  }
}

function showTitle(asset) {
  document.title = `${asset.file_name}: medialens`;
  $("#asset-title").textContent = asset.file_name;
  $("#asset-kind").replaceChildren(badge(asset.media_type));
  $("#asset-status").replaceChildren(statusBadge(asset.status));
  const source = $("#asset-source");
  source.hidden = !asset.media_url;
  if (asset.media_url) source.href = asset.media_url;
}

// --- the media ------------------------------------------------------------------------------

function startSecond() {
  const t = Number(new URLSearchParams(location.search).get("t"));
  return Number.isFinite(t) && t > 0 ? t : 0;
}

function startPage() {
  const match = /^#page=(\d+)$/.exec(location.hash);
  return match ? Number(match[1]) : null;
}

function showMedia(asset) {
  const target = $("#asset-viewer");
  view.player = null;
  if ((asset.media_type === "video" || asset.media_type === "audio") && asset.media_url) {
    const player = element(asset.media_type, {
      id: "player",
      controls: true,
      preload: "auto",
      src: asset.media_url,
      "aria-label": asset.file_name,
    });
    const start = startSecond();
    player.addEventListener("loadedmetadata", () => start && seek(start, false), { once: true });
    player.addEventListener("timeupdate", followPlayer);
    view.player = player;
    target.replaceChildren(player);
  } else if (asset.media_type === "image" && asset.media_url) {
    target.replaceChildren(element("img", { id: "image-view", src: asset.media_url, alt: asset.file_name }));
  } else if (asset.media_type === "document" && asset.media_url) {
    openDocument(asset, startPage());
  } else {
    target.replaceChildren(element("p", { class: "placeholder", text: "This file cannot be shown here." }));
  }
}

function openDocument(asset, page) {
  const pdf = /\.pdf$/i.test(asset.file_name);
  const frame = element("iframe", {
    id: "doc-frame",
    title: `${asset.file_name}${page ? `, page ${page}` : ""}`,
    src: `${asset.media_url}${pdf && page ? `#page=${page}` : ""}`,
    // Uploaded pages must not run scripts; a sandbox would also stop the PDF viewer.
    sandbox: pdf ? null : "",
  });
  $("#asset-viewer").replaceChildren(frame);
}

// Plays from `second`; `play`: also start playing (a click is the user gesture browsers want).
function seek(second, play = true) {
  if (!view.player) return;
  view.player.currentTime = second;
  if (play) view.player.play().catch(() => {});
  followPlayer();
}

// The word being said and the playhead follow the player.
function followPlayer() {
  const now = view.player.currentTime;
  const playhead = $("#playhead");
  if (playhead && view.duration) playhead.style.left = `${Math.min(100, (100 * now) / view.duration)}%`;
  let low = 0;
  let high = view.wordStarts.length - 1;
  let found = -1;
  while (low <= high) {
    const middle = (low + high) >> 1;
    if (view.wordStarts[middle] <= now) {
      found = middle;
      low = middle + 1;
    } else high = middle - 1;
  }
  const word = found >= 0 ? view.wordNodes[found] : null;
  if (word === view.currentWord) return;
  if (view.currentWord) view.currentWord.classList.remove("current");
  if (word) word.classList.add("current");
  view.currentWord = word;
}

// --- the transcript (or a document's text) ---------------------------------------------------

function showTranscript(asset, timeline) {
  const target = $("#transcript");
  view.wordStarts = [];
  view.wordNodes = [];
  view.currentWord = null;
  if (timeline.segments.length) {
    $("#transcript-heading").textContent = timeline.language ? `Transcript (${timeline.language})` : "Transcript";
    const blocks = [];
    let next = 0; // words are in segment order: each segment takes those that start within it
    for (const segment of timeline.segments) {
      const time = element("button", {
        type: "button",
        class: "segment-time",
        text: clock(segment.start),
        "aria-label": `Play from ${clock(segment.start)}`,
      });
      time.addEventListener("click", () => seek(segment.start));
      const text = element("span", { class: "segment-text" });
      while (next < timeline.words.length && timeline.words[next].start < segment.end + 0.01) {
        const word = timeline.words[next];
        const node = element("span", {
          class: "word",
          "data-start": String(word.start),
          "data-end": String(word.end),
          title: word.probability !== null ? `${clock(word.start)} · ${Math.round(word.probability * 100)}% sure` : clock(word.start),
          text: word.text,
        });
        if (word.probability !== null && word.probability < 0.5) node.classList.add("unsure");
        view.wordStarts.push(word.start);
        view.wordNodes.push(node);
        text.append(node, " ");
        next += 1;
      }
      if (!text.childNodes.length) text.textContent = segment.text;
      blocks.push(element("p", { class: "segment", "data-start": String(segment.start) }, time, text));
    }
    target.replaceChildren(...blocks);
    return;
  }
  const moments = asset.moments.filter((moment) => moment.text);
  $("#transcript-heading").textContent = asset.media_type === "document" ? "Text" : "Text found";
  if (!moments.length) {
    const note = !TERMINAL.has(asset.status)
      ? "The analysis is still running."
      : asset.status === "FAILED"
        ? "The analysis failed (the reason is below): nothing was read from this file."
        : "No words were found in this file.";
    target.replaceChildren(element("p", { class: "placeholder", text: note }));
    return;
  }
  target.replaceChildren(...moments.map((moment) => passage(asset, moment)));
}

function passage(asset, moment) {
  const head = [];
  if (moment.page) {
    const open = element("button", { type: "button", class: "segment-time", text: `page ${moment.page}`, "aria-label": `Open page ${moment.page}` });
    open.addEventListener("click", () => openDocument(asset, moment.page));
    head.push(open);
  } else if (moment.start !== null && moment.start !== undefined) {
    const play = element("button", { type: "button", class: "segment-time", text: clock(moment.start), "aria-label": `Play from ${clock(moment.start)}` });
    play.addEventListener("click", () => seek(moment.start));
    head.push(play);
  }
  if (moment.section) head.push(element("span", { class: "section", text: moment.section }));
  return element("p", { class: "segment", "data-modality": moment.modality }, ...head, element("span", { class: "segment-text", text: moment.text }));
}

// --- the timeline -----------------------------------------------------------------------------

function lanesOf(timeline) {
  const lanes = [
    { name: "Shots", items: timeline.shots.map((s) => ({ start: s.start, end: s.end, label: `Shot ${s.index + 1}` })) },
    {
      name: "Keyframes",
      thumbnails: true,
      items: timeline.keyframes.map((k) => ({ start: k.time, end: k.until, label: `Keyframe at ${clock(k.time)}`, thumbnail: k.thumbnail_url })),
    },
    { name: "Speech", items: timeline.segments.map((s) => ({ start: s.start, end: s.end, label: s.text })) },
    { name: "On-screen text", items: timeline.screen_text.map((s) => ({ start: s.start, end: s.end, label: s.text })) },
  ];
  for (const lane of timeline.lanes) {
    const name = lane.name.charAt(0).toUpperCase() + lane.name.slice(1);
    lanes.push({
      name,
      items: lane.spans.map((span) => ({
        start: span.start,
        end: span.end,
        label: span.confidence !== null ? `${span.label} (${Math.round(span.confidence * 100)}%)` : span.label,
      })),
    });
  }
  return lanes.filter((lane) => lane.items.length);
}

function showTimeline(timeline) {
  const section = $("#timeline-section");
  const lanes = lanesOf(timeline);
  const ends = lanes.flatMap((lane) => lane.items.map((item) => item.end));
  view.duration = timeline.duration_s || Math.max(0, ...ends);
  section.hidden = !view.player || !view.duration || !lanes.length;
  if (section.hidden) return;
  const percent = (second) => `${Math.max(0, Math.min(100, (100 * second) / view.duration))}%`;
  const rows = lanes.map((lane) => {
    const track = element("div", { class: `lane-track${lane.thumbnails ? " lane-thumbs" : ""}` });
    for (const item of lane.items) {
      const button = element(
        "button",
        {
          type: "button",
          class: "lane-item",
          title: `${clock(item.start)}–${clock(item.end)}  ${item.label}`,
          "aria-label": `${lane.name}: ${item.label}, ${clock(item.start)}`,
          "data-start": String(item.start),
        },
        item.thumbnail ? element("img", { src: item.thumbnail, alt: "", loading: "lazy" }) : null,
      );
      button.style.left = percent(item.start);
      if (!lane.thumbnails) button.style.width = `max(3px, calc(${percent(item.end)} - ${percent(item.start)}))`;
      button.addEventListener("click", () => seek(item.start));
      track.append(button);
    }
    return element("div", { class: "lane", role: "group", "aria-label": lane.name }, element("span", { class: "lane-name", text: lane.name }), track);
  });
  const axis = element("div", { class: "lane-track axis", "aria-hidden": "true" });
  const step = tickStep(view.duration);
  for (let second = 0; second <= view.duration; second += step) {
    const tick = element("span", { class: "tick", text: clock(second).replace(/\.0$/, "") });
    tick.style.left = percent(second);
    axis.append(tick);
  }
  const playhead = element("div", { class: "playhead-area", "aria-hidden": "true" }, element("div", { id: "playhead", class: "playhead" }));
  const tracks = element("div", { class: "tracks" }, ...rows, element("div", { class: "lane" }, element("span", { class: "lane-name" }), axis), playhead);
  $("#timeline").replaceChildren(tracks);
}

function tickStep(duration) {
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
  return steps.find((step) => duration / step <= 10) || 7200;
}

// --- the analysis ---------------------------------------------------------------------------

function fact(name, value) {
  if (value === null || value === undefined || value === "") return [];
  return [element("dt", { text: name }), element("dd", { text: String(value) })];
}

function size(bytes) {
  if (bytes < 1e3) return `${bytes} bytes`;
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(1)} kB`;
  return bytes < 1e9 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e9).toFixed(2)} GB`;
}

function showDetails(asset, timeline) {
  $("#asset-facts").replaceChildren(
    ...fact("Status", asset.status),
    ...fact("Stage", asset.stage),
    ...fact("Why it failed", asset.error_reason || asset.error_code),
    ...fact("Not moving", asset.stalled),
    ...fact("Warnings", asset.warnings.join(" · ")),
    ...fact("Source", asset.source),
    ...fact("Size", size(asset.size)),
    ...fact("Length", timeline.duration_s ? clock(timeline.duration_s) : null),
    ...fact("Language", timeline.language),
    ...fact("Moments indexed", asset.moments_indexed),
    ...fact("Analysis took", `${asset.seconds.toFixed(1)} s`),
    ...fact("Pipeline", asset.pipeline_version),
    ...fact("Execution", asset.execution_name),
    ...fact("Updated", new Date(asset.updated_at).toLocaleString()),
  );
  $("#asset-timings tbody").replaceChildren(
    ...Object.entries(asset.stage_seconds).map(([stage, seconds]) =>
      element("tr", {}, element("td", { text: stage }), element("td", { class: "num", text: seconds.toFixed(2) })),
    ),
  );
  const models = new Map();
  for (const moment of asset.moments) {
    for (const [role, version] of Object.entries(moment.model_versions || {})) models.set(`${role}: ${version}`, true);
  }
  $("#asset-models").replaceChildren(
    ...(models.size ? [...models.keys()].sort().map((text) => element("li", { text })) : [element("li", { class: "muted", text: "none recorded" })]),
  );
  $("#asset-artifacts").replaceChildren(
    ...asset.artifacts.map((artifact) =>
      element("li", {}, artifact.url ? element("a", { href: artifact.url, target: "_blank", rel: "noopener", text: artifact.name }) : artifact.name),
    ),
  );
  $("#asset-events").replaceChildren(
    ...asset.events.map((event) =>
      element("li", {}, element("time", { datetime: event.at, text: new Date(event.at).toLocaleTimeString() }), " ", element("strong", { text: event.kind }), ` ${event.detail}`),
    ),
  );
  const terminal = TERMINAL.has(asset.status);
  $("#asset-reprocess").disabled = !terminal;
  $("#asset-delete").disabled = !terminal;
}

async function reprocess() {
  const status = $("#details-status");
  status.classList.remove("error");
  try {
    const { body } = await api(`assets/${encodeURIComponent(ASSET_ID)}/reprocess`, { method: "POST" });
    status.textContent = `Reprocessing (attempt ${body.attempt}).`;
    await loadAsset(false);
  } catch (error) {
    status.classList.add("error");
    status.textContent = describeError(error);
  }
}

async function remove() {
  const asset = view.asset;
  if (!asset || !window.confirm(`Delete ${asset.file_name}? Its moments and derived files are removed; the source file stays.`)) return;
  const status = $("#details-status");
  try {
    await api(`assets/${encodeURIComponent(ASSET_ID)}`, { method: "DELETE" });
    location.assign(document.baseURI);
  } catch (error) {
    status.classList.add("error");
    status.textContent = describeError(error);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#asset-reprocess").addEventListener("click", reprocess);
  $("#asset-delete").addEventListener("click", remove);
  // A click on a word plays from it (one listener for every word).
  $("#transcript").addEventListener("click", (event) => {
    const word = event.target.closest(".word");
    if (word) seek(Number(word.dataset.start));
  });
  window.addEventListener("hashchange", () => view.asset && startPage() && openDocument(view.asset, startPage()));
  loadAsset(true);
});
