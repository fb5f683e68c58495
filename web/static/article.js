// Bring the highlighted quote to the middle of the screen (the #quote fragment alone puts it at the very top).
"use strict";

(function () {
  const mark = document.getElementById("quote");
  if (!mark) return;
  const reduced = window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  mark.scrollIntoView({block: "center", behavior: reduced ? "auto" : "smooth"});
  mark.focus({preventScroll: true});
})();
