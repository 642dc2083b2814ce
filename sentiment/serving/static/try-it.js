// The try-it page: scores one review through the API the clients use (POST /v1/predict)
// and shows what came back, or the API's own error message. Where the API needs a key,
// the one typed in is sent with each call and kept nowhere else.
"use strict";

const $ = (id) => document.getElementById(id);
let maxChars = 0;
let needsKey = false;

function headers(extra) {
  const all = { Accept: "application/json", ...extra };
  if (needsKey) all.Authorization = `Bearer ${$("key").value.trim()}`;
  return all;
}

function show(id, text) {
  $(id).textContent = text;
  $(id).hidden = false;
}

function fail(message) {
  $("result").hidden = true;
  show("error", message);
}

function count() {
  const length = $("review").value.length;
  $("count").textContent = maxChars ? `${length} / ${maxChars} characters` : `${length} characters`;
}

async function describe() {
  try {
    if (needsKey && !$("key").value.trim()) {
      $("about").textContent = "Type your API key to use the model.";
      return;
    }
    const response = await fetch("/v1/model", { headers: headers({}) });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error ? body.error.message : response.statusText);
    $("about").textContent = `Model ${body.model.version}, served in ${body.service.environment}.`;
  } catch (error) {
    $("about").textContent = `The model is not available: ${error.message}`;
  }
}

async function score(event) {
  event.preventDefault();
  $("error").hidden = true;
  const review = $("review").value;
  if (needsKey && !$("key").value.trim()) return fail("Type your API key first.");
  if (!review.trim()) return fail("Type a review first.");
  if (maxChars && review.length > maxChars) {
    return fail(`The review is ${review.length} characters long; the limit is ${maxChars}.`);
  }
  $("score").disabled = true;
  try {
    const response = await fetch("/v1/predict", {
      method: "POST",
      headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({ reviews: [review] }),
    });
    const body = await response.json();
    if (!response.ok) return fail(body.error ? body.error.message : response.statusText);
    const [prediction] = body.predictions;
    $("label").textContent = prediction.label;
    $("label").className = prediction.label;
    $("positive").textContent = prediction.positive.toFixed(3);
    $("model").textContent = body.model_version;
    $("request").textContent = body.request_id;
    $("result").hidden = false;
  } catch (error) {
    fail(`The service did not answer: ${error.message}`);
  } finally {
    $("score").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  maxChars = Number(document.body.dataset.maxChars || 0);
  needsKey = document.body.dataset.needsKey === "true";
  if (needsKey) $("key").addEventListener("change", describe);
  $("form").addEventListener("submit", score);
  $("review").addEventListener("input", count);
  count();
  describe();
});
