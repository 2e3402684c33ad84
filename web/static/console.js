// The console's only script: progress for work that takes a while, the upload size check,
// following a protect job, and refreshing the dashboard's counts. No inline script anywhere
// (the Content-Security-Policy allows only this file).
"use strict";

function showProgress(text) {
  const panel = document.getElementById("progress");
  document.getElementById("progress-text").textContent = text;
  panel.hidden = false;
  const started = Date.now();
  const seconds = document.getElementById("progress-seconds");
  setInterval(() => { seconds.textContent = Math.round((Date.now() - started) / 1000); }, 250);
}

function uploadTooLarge(form) {
  const limit = Number(document.body.dataset.uploadLimitMb);
  let bytes = 0;
  for (const input of form.querySelectorAll("input[type=file]")) {
    for (const file of input.files) bytes += file.size;
  }
  if (bytes <= limit * 1024 * 1024) return null;
  const size = Math.ceil(bytes / 104857.6) / 10; // MB, rounded up: never shows the limit itself
  return `These files are ${size} MB; the console accepts at most ${limit} MB ` +
    "per upload ([web] max_upload_mb in node.toml). Send fewer or smaller files.";
}

function watchForms() {
  for (const form of document.querySelectorAll("form.work")) {
    form.addEventListener("submit", (event) => {
      const message = uploadTooLarge(form);
      let error = form.querySelector(".upload-error");
      if (message) {
        event.preventDefault();
        if (!error) {
          error = document.createElement("p");
          error.className = "error upload-error";
          error.setAttribute("role", "alert");
          form.appendChild(error);
        }
        error.textContent = message;
        return;
      }
      if (error) error.remove();
      form.querySelector("button[type=submit]").disabled = true;
      showProgress(form.dataset.working || "Working");
    });
  }
}

function followJob() {
  const job = document.getElementById("job");
  if (!job || job.dataset.done === "yes") return;
  showProgress("Protecting");
  const poll = async () => {
    try {
      const state = await (await fetch(job.dataset.progress, { headers: { Accept: "application/json" } })).json();
      document.getElementById("job-finished").textContent = state.finished;
      document.getElementById("job-progress").value = state.finished;
      if (state.done || String(state.finished) !== job.dataset.finished) { location.reload(); return; }
    } catch (e) { /* the next poll tries again */ }
    setTimeout(poll, 500);
  };
  setTimeout(poll, 500);
}

function follow() {
  // A page that shows work in the background (a send): poll its state, reload when it moves.
  const work = document.getElementById("follow");
  if (!work || work.dataset.done === "yes") return;
  const poll = async () => {
    try {
      const state = await (await fetch(work.dataset.progress, { headers: { Accept: "application/json" } })).json();
      if (state.done || String(state.finished) !== work.dataset.finished) { location.reload(); return; }
    } catch (e) { /* the next poll tries again */ }
    setTimeout(poll, 500);
  };
  setTimeout(poll, 500);
}

function confirmForms() {
  for (const form of document.querySelectorAll("form.confirm")) {
    form.addEventListener("submit", (event) => { if (!window.confirm(form.dataset.confirm)) event.preventDefault(); });
  }
}

function refreshCounts() {
  const counts = document.getElementById("counts");
  if (!counts) return;
  setInterval(async () => {
    try {
      const state = await (await fetch(counts.dataset.source, { headers: { Accept: "application/json" } })).json();
      for (const cell of counts.querySelectorAll("[data-count]")) cell.textContent = state[cell.dataset.count];
    } catch (e) { /* keep the last numbers */ }
  }, 5000);
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-back]")) button.addEventListener("click", () => history.back());
  watchForms();
  followJob();
  follow();
  confirmForms();
  refreshCounts();
});
