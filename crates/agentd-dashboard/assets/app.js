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

document.addEventListener("DOMContentLoaded", () => {
  const logs = document.getElementById("logs");
  if (logs) followLogs(logs);
  copyButtons();
});
