// agentd dashboard: progressive enhancement only. Every page works without it; with it,
// an invocation's logs arrive live over Server-Sent Events from this same origin.
"use strict";

function followLogs(list) {
  const url = list.dataset.events;
  if (!url || !window.EventSource) return;
  if (list.dataset.terminal === "true") return; // nothing more will come
  // EventSource reconnects by itself after a network drop and sends Last-Event-ID (the
  // seq of the last line it got), so the server resumes after it: no gap, no repeat.
  const source = new EventSource(url);
  const seen = new Set(Array.from(list.children, (li) => li.dataset.seq));
  const append = (html) => {
    const tpl = document.createElement("template");
    tpl.innerHTML = html; // the server rendered and escaped it
    const li = tpl.content.firstElementChild;
    if (!li || seen.has(li.dataset.seq)) return;
    seen.add(li.dataset.seq);
    li.dataset.live = "true"; // arrived while the page was open
    list.appendChild(li);
    li.scrollIntoView({ block: "nearest" });
  };
  source.addEventListener("line", (e) => append(e.data));
  source.addEventListener("change", (e) => {
    append(e.data);
    // The status or a question changed: the page shows them, so show it again.
    source.close();
    window.location.reload();
  });
  source.addEventListener("end", () => {
    source.close();
    window.location.reload();
  });
  source.addEventListener("failed", () => source.close());
}

// A "Copy" button copies the text of the element its data-copy names.
function copyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const target = document.getElementById(button.dataset.copy);
      if (!target || !navigator.clipboard) return;
      await navigator.clipboard.writeText(target.textContent);
      button.textContent = "Copied";
    });
  }
}

// A form with data-upload is sent by XMLHttpRequest so its progress shows; the answer
// (the agent's page, or an error page) is then shown as the browser would have.
function uploadWithProgress(form) {
  const progress = form.querySelector("progress");
  const status = form.querySelector("[role=status]");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.action);
    xhr.responseType = "document";
    if (progress) { progress.hidden = false; progress.value = 0; }
    xhr.upload.addEventListener("progress", (e) => {
      if (!e.lengthComputable) return;
      const percent = Math.round((e.loaded / e.total) * 100);
      if (progress) progress.value = percent;
      if (status) status.textContent = `Uploading: ${percent} %`;
    });
    xhr.addEventListener("load", () => {
      if (xhr.status < 400) {
        window.location.assign(xhr.responseURL);
        return;
      }
      const problem = xhr.response && xhr.response.querySelector(".error");
      if (status) status.textContent = problem ? problem.textContent : `The upload failed (${xhr.status}).`;
      if (status) status.classList.add("error");
    });
    xhr.addEventListener("error", () => {
      if (status) status.textContent = "The upload failed: the server could not be reached.";
    });
    xhr.send(new FormData(form));
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const form of document.querySelectorAll("form[data-upload]")) uploadWithProgress(form);
  const logs = document.getElementById("logs");
  if (logs) followLogs(logs);
  copyButtons();
});
