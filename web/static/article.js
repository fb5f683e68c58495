// Bring the highlighted quote to the middle of the screen (the #quote fragment alone puts it at the very top).
"use strict";

(function () {
  const mark = document.getElementById("quote");
  if (mark) mark.scrollIntoView({block: "center"});
})();
