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
      uploadWithProgress(form, event);
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

function refreshDashboard() {
  // The whole dashboard (counts, throughput, carriers, quarantine, associations) every 5 s.
  const counts = document.getElementById("counts");
  if (!counts) return;
  setInterval(async () => {
    try {
      const response = await fetch(location.href, { headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const fresh = new DOMParser().parseFromString(await response.text(), "text/html").querySelector("main");
      if (fresh) document.querySelector("main").replaceChildren(...fresh.childNodes);
    } catch (e) { /* keep what is shown */ }
  }, 5000);
}

function fileList(input) {
  // The chosen files with their sizes and a progress bar each (filled as the upload goes).
  let list = input.parentElement.querySelector("ul.files[data-for='" + input.id + "']");
  if (!list) {
    list = document.createElement("ul");
    list.className = "files";
    list.dataset.for = input.id;
    input.insertAdjacentElement("afterend", list);
  }
  list.replaceChildren();
  for (const file of input.files) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = `${file.name} (${Math.max(1, Math.round(file.size / 1024))} kB)`;
    const bar = document.createElement("progress");
    bar.max = file.size || 1;
    bar.value = 0;
    item.append(name, bar);
    list.appendChild(item);
  }
  return list;
}

function dropZones() {
  // Files dropped anywhere on a form go to its first file input; the list shows them.
  for (const input of document.querySelectorAll("form.work input[type=file]")) {
    input.addEventListener("change", () => fileList(input));
  }
  for (const form of document.querySelectorAll("form.work")) {
    const input = form.querySelector("input[type=file]");
    if (!input) continue;
    form.classList.add("drop");
    form.addEventListener("dragover", (event) => { event.preventDefault(); form.classList.add("over"); });
    form.addEventListener("dragleave", () => form.classList.remove("over"));
    form.addEventListener("drop", (event) => {
      event.preventDefault();
      form.classList.remove("over");
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      input.files = event.dataTransfer.files;
      fileList(input);
    });
  }
}

function uploadWithProgress(form, event) {
  // Protect: send the form with XMLHttpRequest to show each file's share of the upload, then
  // follow the job page it redirects to.
  const input = form.querySelector("input[type=file][multiple]");
  if (!input || form.dataset.upload !== "xhr" || !window.XMLHttpRequest) return;
  event.preventDefault();
  const list = fileList(input);
  const bars = [...list.querySelectorAll("progress")];
  const sizes = [...input.files].map((file) => file.size);
  const request = new XMLHttpRequest();
  request.open("POST", form.action || location.href);
  request.upload.addEventListener("progress", (progress) => {
    const total = sizes.reduce((a, b) => a + b, 0) || 1;
    let sent = progress.loaded * total / (progress.total || total);
    sizes.forEach((size, i) => { const part = Math.min(size, Math.max(0, sent)); bars[i].value = part; sent -= size; });
  });
  request.addEventListener("load", () => {
    if (request.status < 400 && request.responseURL) { location.assign(request.responseURL); return; }
    const page = new DOMParser().parseFromString(request.responseText, "text/html");
    const main = page.querySelector("main");
    if (!main) { location.reload(); return; }
    document.title = page.title;
    document.querySelector("main").replaceChildren(...main.childNodes);
    document.getElementById("progress").hidden = true;
  });
  request.addEventListener("error", () => { location.reload(); });
  request.send(new FormData(form));
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("[data-back]")) button.addEventListener("click", () => history.back());
  watchForms();
  followJob();
  follow();
  confirmForms();
  refreshDashboard();
  dropZones();
});
