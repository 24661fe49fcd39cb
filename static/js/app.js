// The dashboard's own behaviour, hooked by data- attributes (no inline script: see templates/base.html).

// <form data-confirm="Delete it?">: asks before the form is sent, with or without htmx.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    event.stopImmediatePropagation();
  }
}, true);

// data-swap-statuses="400 404" on an element: htmx swaps those answers of requests made inside it
// (they carry a message for the page) instead of treating them as errors.
document.addEventListener("htmx:beforeSwap", (event) => {
  const holder = event.target.closest("[data-swap-statuses]");
  if (holder && holder.dataset.swapStatuses.split(/\s+/).includes(String(event.detail.xhr.status))) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

// Keyboard focus survives a swap: the control just used (a button in a result's form, say), when
// the swap replaced it, is found again in the new content (by its id, or by its name and value
// inside the nearest element with an id) and focused, instead of focus falling to <body>.
let focusedBeforeSwap = null;
document.addEventListener("htmx:beforeSwap", () => {
  const control = document.activeElement;
  focusedBeforeSwap = control && control !== document.body ? locator(control) : null;
});
document.addEventListener("htmx:afterSettle", () => {
  const wanted = focusedBeforeSwap;
  focusedBeforeSwap = null;
  if (!wanted || (document.activeElement && document.activeElement !== document.body)) return;
  document.querySelector(wanted)?.focus();
});

function locator(element) {
  if (element.id) return `#${CSS.escape(element.id)}`;
  const holder = element.parentElement?.closest("[id]");
  if (!holder || !element.name) return null;
  const value = element.value === undefined ? "" : `[value="${CSS.escape(element.value)}"]`;
  return `#${CSS.escape(holder.id)} [name="${CSS.escape(element.name)}"]${element.type === "submit" ? value : ""}`;
}

// <table class="cards">: on a phone each row is a card (app.css); each cell carries its column's
// name in data-label, taken from the table's header, for content that htmx swaps in too.
document.addEventListener("htmx:load", (event) => {
  const content = event.detail.elt; // the page at first, then each piece swapped in (a row, say)
  const tables = content.closest("table.cards") ? [content.closest("table.cards")] : content.querySelectorAll("table.cards");
  for (const table of tables) {
    const labels = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
    for (const row of table.querySelectorAll("tbody tr")) {
      [...row.cells].forEach((cell, i) => {
        if (labels[i]) cell.dataset.label = labels[i];
      });
    }
  }
});

// Back or forward pressed again before the page of the last one came: only the latest is shown.
// htmx keeps no page in its history cache (base.html), so it asks the server for each, and an
// older answer arriving last would show its page under the newer URL.
let historyRequest = null;
document.addEventListener("htmx:historyCacheMiss", (event) => {
  historyRequest?.abort();
  historyRequest = event.detail.xhr;
});
