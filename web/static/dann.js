// The playground: sends the form to POST /api/generate and shows each candidate, and keeps the
// model panel in step with GET /api/status (the server hot-reloads newer models).
//
// Everything that came from the model or the visitor goes onto the page with textContent, never
// innerHTML: a prompt like <img src=x onerror=...> is text to show, not markup to run.
"use strict";

const $ = (id) => document.getElementById(id);
const form = $("form");
const button = $("generate");
const output = $("output");
const message = $("message");
const temperature = $("temperature");
const STATUS_EVERY_MS = 30000; // how often the panel asks whether a newer model is being served

let busy = false;

// Something to reply to makes the answer a reply, unless the visitor has picked the kind themself.
let modePicked = false;
$("mode").addEventListener("change", () => (modePicked = true));
$("context").addEventListener("input", () => {
  if (!modePicked) $("mode").value = $("context").value.trim() ? "reply" : "post";
});

function showTemperature() {
  $("temperature-value").textContent = Number(temperature.value).toFixed(2);
}

async function generate(event) {
  event.preventDefault();
  if (busy) return; // a second Enter while the first is out would only queue a duplicate
  busy = true;
  // Not disabled: disabling the focused button would throw a keyboard user's focus away.
  button.setAttribute("aria-busy", "true");
  button.textContent = "Generating…";
  message.textContent = "";
  try {
    const response = await fetch("/api/generate", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({
        mode: $("mode").value,
        prompt: $("prompt").value,
        context: $("context").value.trim() || null,
        temperature: Number(temperature.value),
        n: Number($("n").value),
      }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      message.textContent = body.detail || `The server answered ${response.status}.`;
      return;
    }
    showTexts(body.texts);
    const count = body.texts.length === 1 ? "1 candidate" : `${body.texts.length} candidates`;
    message.textContent = `${count} from model version ${body.model_version} in ${Math.round(body.ms)} ms.`;
    loadStatus(); // a newer model, and the copy filter's counts, show at once
  } catch (error) {
    message.textContent = "Could not reach the server. Is `dann web` still running?";
  } finally {
    busy = false;
    button.removeAttribute("aria-busy");
    button.textContent = "Generate";
  }
}

function showTexts(texts) {
  output.replaceChildren(
    ...texts.map((text) => {
      const item = document.createElement("li");
      const words = document.createElement("p");
      words.className = "text";
      words.textContent = text;
      const ask = document.createElement("button");
      ask.type = "button";
      ask.className = "why";
      ask.textContent = "why?";
      ask.setAttribute("aria-expanded", "false");
      const answer = document.createElement("div");
      answer.className = "why-answer";
      answer.hidden = true;
      ask.addEventListener("click", () => explain(text, ask, answer));
      item.append(words, ask, answer);
      return item;
    }),
  );
}

// "Why did dann say that?": the real posts the text is closest to (POST /api/why), and how new it is.
async function explain(text, ask, answer) {
  if (ask.getAttribute("aria-expanded") === "true") {
    answer.hidden = true;
    ask.setAttribute("aria-expanded", "false");
    return;
  }
  ask.setAttribute("aria-busy", "true");
  try {
    const response = await fetch("/api/why", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text }),
    });
    const body = await response.json().catch(() => ({}));
    const summary = document.createElement("p");
    summary.textContent = response.ok ? body.summary : body.detail || `The server answered ${response.status}.`;
    const parts = [summary];
    if (response.ok && body.posts.length) {
      const heading = document.createElement("p");
      heading.textContent = "The real posts it is closest to:";
      const list = document.createElement("ul");
      list.className = "closest";
      for (const post of body.posts) {
        const item = document.createElement("li");
        const quote = document.createElement("blockquote");
        quote.textContent = post.text;
        const shared = document.createElement("p");
        shared.className = "hint";
        shared.textContent = `shares: ${post.shared.join(", ")}`;
        item.append(quote, shared);
        list.append(item);
      }
      parts.push(heading, list);
    } else if (response.ok) {
      const none = document.createElement("p");
      none.textContent = "It shares no rare word with any post dann may show.";
      parts.push(none);
    }
    answer.replaceChildren(...parts);
    answer.hidden = false;
    ask.setAttribute("aria-expanded", "true");
  } catch (error) {
    answer.replaceChildren(Object.assign(document.createElement("p"), { textContent: "Could not reach the server." }));
    answer.hidden = false;
  } finally {
    ask.removeAttribute("aria-busy");
  }
}

async function loadStatus() {
  let status;
  try {
    const response = await fetch("/api/status", { cache: "no-store" });
    status = await response.json();
  } catch (error) {
    $("model-version").textContent = "unknown: the server did not answer";
    return;
  }
  const model = status.model;
  if (status.about) $("about").textContent = status.about;
  $("model-version").textContent = model ? String(model.version) : "none yet: dann is still learning";
  $("model-trained").textContent = model && model.trained_at ? when(model.trained_at) : "—";
  $("model-loss").textContent =
    model && typeof model.val_loss === "number"
      ? `${model.val_loss.toFixed(3)} nats a character (${(model.val_loss / Math.LN2).toFixed(2)} bits)` +
        (typeof model.ngram_val_loss === "number"
          ? `; a character n-gram model scores ${model.ngram_val_loss.toFixed(3)}, letter frequencies alone ${model.unigram_val_loss.toFixed(3)}`
          : "")
      : "—";
  $("model-data").textContent = model ? learnedFrom(model) : "—";
  $("model-filter").textContent = model ? copyFilter(model) : "—";
  showPlot(status.plot && model ? model.version : null);
  startGame(status);
}

function when(iso) {
  const date = new Date(iso);
  return isNaN(date) ? iso : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

function learnedFrom(model) {
  const parts = [];
  if (typeof model.posts === "number") parts.push(`${model.posts.toLocaleString()} posts`);
  if (typeof model.replies === "number") parts.push(`${model.replies.toLocaleString()} replies`);
  const steps = typeof model.steps === "number" ? `, ${model.steps.toLocaleString()} training steps` : "";
  return (parts.join(" and ") || "—") + steps;
}

function copyFilter(model) {
  if (!model.copy_filter) return "off: this model was saved without an index of its training posts";
  const rule = `rejects ${model.copy_filter.words} words or ${model.copy_filter.chars} characters in a row copied from the posts`;
  const seen = model.candidates;
  if (!seen || !seen.candidates) return `${rule}; best of ${model.best_of}, nothing generated yet`;
  return (
    `${rule}; best of ${model.best_of}. Of ${seen.candidates.toLocaleString()} candidates so far, ` +
    `${seen.copies.toLocaleString()} copied, ${seen.gibberish.toLocaleString()} were gibberish, ` +
    `${seen.loops.toLocaleString()} looped`
  );
}

function showPlot(version) {
  const plot = $("plot");
  const note = $("plot-note");
  if (version === null) {
    plot.hidden = true;
    plot.removeAttribute("src");
    note.textContent = "No training plot yet: the trainer draws one when it publishes a model.";
    return;
  }
  const src = `/api/plot.png?version=${encodeURIComponent(version)}`; // a new model, a new picture
  if (plot.getAttribute("src") === src) return;
  plot.onload = () => {
    plot.hidden = false;
    note.textContent = "Loss by training step for the run that made this model.";
  };
  plot.onerror = () => {
    plot.hidden = true;
    note.textContent = "The training plot could not be loaded.";
  };
  plot.src = src;
}

// --- Real or dann? (shown only when the server has DANN_WEB_GAME on) ---------------------------

let pair = null; // {pair, a, b, model_version} while it waits for a vote

async function dealPair() {
  pair = null;
  for (const side of ["a", "b"]) {
    const card = $(`game-${side}`);
    card.disabled = true;
    card.textContent = "…";
    card.removeAttribute("data-verdict");
  }
  $("game-next").hidden = true;
  $("game-message").textContent = "Dealing a pair…";
  try {
    const response = await fetch("/api/game/pair", { method: "POST" });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      $("game-message").textContent = body.detail || `The server answered ${response.status}.`;
      $("game-next").hidden = false;
      return;
    }
    pair = body;
    $("game-a").textContent = body.a;
    $("game-b").textContent = body.b;
    $("game-a").disabled = $("game-b").disabled = false;
    $("game-message").textContent = "Pick the real one.";
  } catch (error) {
    $("game-message").textContent = "Could not reach the server.";
    $("game-next").hidden = false;
  }
}

async function vote(pick) {
  if (!pair) return;
  const voted = pair;
  pair = null; // one vote a pair: a second click does nothing
  $("game-a").disabled = $("game-b").disabled = true;
  try {
    const response = await fetch("/api/game/vote", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ pair: voted.pair, pick }),
    });
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      $("game-message").textContent = body.detail || `The server answered ${response.status}.`;
    } else {
      for (const side of ["a", "b"]) $(`game-${side}`).dataset.verdict = side === body.real ? "real" : "dann";
      $("game-message").textContent = body.correct
        ? "Right: that one is real."
        : "Fooled: that one was dann's. The real post is outlined.";
      showTally(body.tally);
    }
  } catch (error) {
    $("game-message").textContent = "Could not reach the server.";
  }
  $("game-next").hidden = false;
  $("game-next").focus();
}

function showTally(tally) {
  if (!tally || !tally.votes) {
    $("game-tally").textContent = "No votes on this model yet.";
    return;
  }
  const pct = (x) => `${Math.round(x * 100)}%`;
  $("game-tally").textContent =
    `This model has fooled ${tally.fooled} of ${tally.votes} votes: ${pct(tally.fool_rate)} ` +
    `(95% interval ${pct(tally.low)} to ${pct(tally.high)}; 50% would be as good as real).`;
}

function startGame(status) {
  const game = $("game");
  if (!status.game || !status.game.enabled || !status.model) return;
  if (game.hidden) {
    game.hidden = false;
    dealPair();
  }
  showTally(status.game.tally);
}

$("game-a").addEventListener("click", () => vote("a"));
$("game-b").addEventListener("click", () => vote("b"));
$("game-next").addEventListener("click", dealPair);

temperature.addEventListener("input", showTemperature);
form.addEventListener("submit", generate);
showTemperature();
loadStatus();
setInterval(loadStatus, STATUS_EVERY_MS);
