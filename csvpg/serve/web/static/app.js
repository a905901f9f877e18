// csvpg web app: the live run (server-sent events), the cancel dialog, file uploads.
"use strict";

function follow(section) {
  const source = new EventSource(section.dataset.events);
  source.addEventListener("progress", (e) => { section.innerHTML = e.data; });
  source.addEventListener("end", (e) => { source.close(); window.location.assign(e.data); });
  // Closed for good (the server forgot the run, or restarted): the page shows what it knows.
  source.addEventListener("error", () => { if (source.readyState === EventSource.CLOSED) window.location.reload(); });
}

function dialogs() {
  document.querySelectorAll("[data-dialog]").forEach((button) => {
    const dialog = document.getElementById(button.dataset.dialog);
    button.addEventListener("click", () => dialog.showModal());
    dialog.querySelectorAll("[data-close]").forEach((b) => b.addEventListener("click", () => dialog.close()));
  });
}

function uploadOne(zone, file) {
  const item = document.createElement("li");
  item.innerHTML = '<span class="name"></span><span class="pct">0 %</span><div class="bar"><span style="width:0"></span></div>';
  item.querySelector(".name").textContent = file.name;
  zone.querySelector(".uploads").append(item);
  const bar = item.querySelector(".bar span"), pct = item.querySelector(".pct");
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", zone.dataset.upload);
    xhr.setRequestHeader("X-CSRF-Token", zone.dataset.csrf);
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      const p = (100 * e.loaded) / e.total;
      bar.style.width = p + "%";
      pct.textContent = p.toFixed(1) + " %";
    });
    xhr.addEventListener("loadend", () => {
      const ok = xhr.status >= 200 && xhr.status < 300;
      let detail = "";
      try { detail = JSON.parse(xhr.responseText).detail || ""; } catch (err) { detail = ""; }
      item.classList.add(ok ? "done" : "failed");
      pct.textContent = ok ? "uploaded" : "failed: " + (detail || xhr.status || "no answer");
      if (ok) bar.style.width = "100%";
      resolve(ok);
    });
    const form = new FormData();
    form.append("files", file);
    xhr.send(form);
  });
}

function uploads(zone) {
  const input = zone.querySelector("input[type=file]");
  const send = async (files) => {
    const results = await Promise.all(Array.from(files).map((f) => uploadOne(zone, f)));
    if (results.length && results.every(Boolean)) {
      const done = document.createElement("p");
      done.className = "ok";
      done.id = "uploaded";
      done.textContent = results.length + " file(s) uploaded: run the job to load them.";
      zone.append(done);
    }
  };
  input.addEventListener("change", () => send(input.files));
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => { e.preventDefault(); zone.classList.remove("over"); send(e.dataTransfer.files); });
}

// A slider that sets the number field beside it (the form sends the number).
function mirrors() {
  document.querySelectorAll("[data-mirror]").forEach((slider) => {
    const field = document.getElementById(slider.dataset.mirror);
    slider.addEventListener("input", () => { field.value = slider.value; });
  });
}

document.addEventListener("DOMContentLoaded", () => {
  mirrors();
  document.querySelectorAll("[data-events]").forEach(follow);
  document.querySelectorAll("[data-upload]").forEach(uploads);
  dialogs();
});
