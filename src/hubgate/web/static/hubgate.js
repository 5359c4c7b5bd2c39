// Progressive touches only: every page works without this file.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  // A SAML message on its way to the IdP by HTTP-POST: sent at once (the button
  // stays for browsers without scripts).
  const outgoing = document.querySelector("form[data-auto-submit]");
  if (outgoing) outgoing.submit();
  // A copy button next to secrets shown once.
  for (const el of document.querySelectorAll("[data-copy]")) {
    if (!navigator.clipboard) break;
    const button = document.createElement("button");
    button.type = "button";
    button.className = "small secondary copy";
    const word = document.createTextNode("Copy");
    const what = document.createElement("span");
    what.className = "sr-only";
    what.textContent = ` ${el.dataset.copyLabel || "the value"}`;
    button.append(word, what);
    button.addEventListener("click", async () => {
      await navigator.clipboard.writeText(el.textContent.trim());
      word.textContent = "Copied";
    });
    el.after(" ", button);
  }
  // Ask before destructive forms.
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
});
