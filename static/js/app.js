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
