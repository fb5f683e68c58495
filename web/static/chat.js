// The chat without page reloads: POST /ask with fetch, render the reply, keep the conversation for the page session.
// Article text only ever reaches the page through textContent / text nodes, never as HTML.
"use strict";

(function () {
  const STORAGE_KEY = "news-qa-conversation";
  const MAX_HISTORY = 20;

  const form = document.getElementById("ask-form");
  const box = document.getElementById("question");
  const button = document.getElementById("ask-button");
  const conversation = document.getElementById("conversation");
  const intro = document.querySelector(".intro");
  if (!form || !box || !conversation) return;

  let turns = [];  // [{question, reply}] where reply is the JSON of POST /ask
  let busy = false;

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(typeof child === "string" ? document.createTextNode(child) : child);
    }
    return node;
  }

  const FIELD_LABELS = {byline: "Byline", source: "Source", published: "Published"};

  function articleHref(article, start, end) {
    const page = "/articles/" + encodeURIComponent(article.id);
    if (start === null || start === undefined || end === null || end === undefined) return page;
    return page + "?start=" + start + "&end=" + end + "#quote";
  }

  function quoteNode(answer) {
    const quote = answer.quote;
    const field = answer.field || "text";
    if (field !== "text") {  // a metadata field of the article: its value, no offsets
      const label = el("span", {class: "field-name"}, (FIELD_LABELS[field] || field) + ":");
      return el("p", {class: "quote field-quote"}, label, " ", el("mark", {class: "answer-span"}, quote));
    }
    const clamp = (n, low) => Math.max(low, Math.min(quote.length, n));
    const a = clamp(answer.answer_start - answer.quote_start, 0);
    const b = clamp(answer.answer_end - answer.quote_start, a);
    return el("blockquote", {class: "quote"}, el("p", null,
      "\u201c" + quote.slice(0, a), el("mark", {class: "answer-span"}, quote.slice(a, b)), quote.slice(b) + "\u201d"));
  }

  function answerItem(answer) {
    const low = answer.confidence ? answer.confidence === "low" : answer.weak;
    const item = el("li", {class: low ? "answer possible" : "answer confident"});
    if (low) {
      item.append(el("p", {class: "caveat"},
        el("strong", {class: "caveat-label"}, "Possible answer \u2014 not confident."),
        " The articles may not answer this; check the quote."));
    }
    item.append(quoteNode(answer));

    const article = answer.article;
    const citation = el("p", {class: "citation"}, el("span", {class: "outlet"}, article.source));
    if (article.published) citation.append(", ", el("time", {datetime: article.published}, article.published));
    citation.append(": ", el("a", {href: articleHref(article, answer.quote_start, answer.quote_end)}, article.title));
    item.append(citation);

    const others = answer.also_reported_by || [];
    if (others.length) {
      const also = el("p", {class: "also"}, "Also reported by ");
      others.forEach((other, i) => {
        const title = other.article.title + (other.article.published ? " (" + other.article.published + ")" : "");
        also.append(el("a", {href: articleHref(other.article, other.quote_start, other.quote_end), title: title},
          other.article.source));
        if (i < others.length - 1) also.append(", ");
      });
      item.append(also);
    }
    const carriers = answer.carried_by || [];
    if (carriers.length) {
      const carried = el("p", {class: "carried"}, "Carried by ");
      carriers.forEach((other, i) => {
        const title = other.article.title + (other.article.published ? " (" + other.article.published + ")" : "")
          + ": the same report, not an independent one";
        carried.append(el("a", {href: articleHref(other.article, other.quote_start, other.quote_end), title: title},
          other.article.source));
        if (i < carriers.length - 1) carried.append(", ");
      });
      item.append(carried);
    }
    return item;
  }

  function questionNode(question) {
    return el("div", {class: "question"}, el("span", {class: "visually-hidden"}, "You asked: "), question);
  }

  function replyNode(reply) {
    const node = el("div", {class: reply.no_answer ? "reply no-answer" : "reply"},
      el("span", {class: "visually-hidden"}, "Reply: "));
    if (reply.no_answer) {
      node.append(el("p", {class: "verdict"}, "The articles do not seem to answer this question."));
      if (reply.answers.length) {
        node.append(el("p", {class: "possible-intro"}, "The closest quotes, as possible answers only:"));
      }
    }
    if (reply.answers.length) node.append(el("ol", {class: "answers"}, ...reply.answers.map(answerItem)));
    return node;
  }

  function errorNode(message) {
    return el("div", {class: "reply error"}, el("p", null, "Sorry, that did not work: " + message));
  }

  function addTurn(question) {
    if (intro) intro.hidden = true;
    const item = el("li", {class: "turn"}, questionNode(question));
    conversation.append(item);
    return item;
  }

  function save() {
    try {
      sessionStorage.setItem(STORAGE_KEY, JSON.stringify(turns));
    } catch (error) {
      // Storage full or disabled: the conversation still lives as long as the page.
    }
  }

  function restore() {
    const rendered = JSON.parse(document.getElementById("conversation-data")?.textContent || "[]");
    if (rendered.length) {
      // The server rendered this conversation (a form post or ?q=): adopt it, and make a reload not re-ask.
      turns = rendered.map((reply) => ({question: reply.question, reply: reply}));
      save();
      history.replaceState(null, "", "/");
      return;
    }
    try {
      turns = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "[]");
    } catch (error) {
      turns = [];
    }
    for (const turn of turns) addTurn(turn.question).append(replyNode(turn.reply));
  }

  function historyTurns() {
    return turns.slice(-MAX_HISTORY).map((turn) => ({
      question: turn.question,
      answer: turn.reply.no_answer || !turn.reply.answers.length ? "" : turn.reply.answers[0].text,
    }));
  }

  function filters() {
    const source = form.elements.source?.value || "";
    const since = form.elements.since?.value || "";
    const until = form.elements.until?.value || "";
    const chosen = {};
    if (source) chosen.sources = [source];
    if (since) chosen.since = since;
    if (until) chosen.until = until;
    return Object.keys(chosen).length ? chosen : null;
  }

  async function errorMessage(response) {
    try {
      const body = await response.json();
      if (body && typeof body.detail === "string") return body.detail + " (" + response.status + ")";
    } catch (error) {
      // not JSON: fall through to the status line
    }
    return "the server answered " + response.status + " " + response.statusText;
  }

  function setBusy(on, item) {
    busy = on;
    form.setAttribute("aria-busy", on ? "true" : "false");
    button.disabled = on;
    button.textContent = on ? "Asking…" : "Ask";
    document.body.classList.toggle("busy", on);
    if (on) {
      item.append(el("div", {class: "reply pending", role: "status"},
        el("span", {class: "spinner", "aria-hidden": "true"}), "Searching the articles…"));
    } else {
      item.querySelector(".pending")?.remove();
    }
  }

  async function ask(event) {
    event.preventDefault();
    const question = box.value.trim();
    if (!question) {
      box.focus();
      return;
    }
    if (busy) return;
    const item = addTurn(question);
    setBusy(true, item);
    item.scrollIntoView({block: "nearest"});
    const body = {question: question, history: historyTurns()};
    const chosen = filters();
    if (chosen) body.filters = chosen;
    let node;
    try {
      const response = await fetch("/ask", {
        method: "POST",
        headers: {"Content-Type": "application/json", "Accept": "application/json"},
        body: JSON.stringify(body),
      });
      if (response.ok) {
        const reply = await response.json();
        turns.push({question: question, reply: reply});
        save();
        node = replyNode(reply);
        box.value = "";
      } else {
        node = errorNode(await errorMessage(response));
      }
    } catch (error) {
      node = errorNode("the server could not be reached. Is it running? Your question is still in the box.");
    }
    setBusy(false, item);
    item.append(node);
    item.scrollIntoView({block: "nearest"});
    box.focus();
  }

  function startOver(event) {
    event.preventDefault();
    turns = [];
    save();
    conversation.replaceChildren();
    if (intro) intro.hidden = false;
    box.focus();
  }

  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", ask);
  document.getElementById("new-conversation")?.addEventListener("click", startOver);
  for (const hint of document.querySelectorAll(".js-only")) hint.hidden = false;
  restore();
})();
