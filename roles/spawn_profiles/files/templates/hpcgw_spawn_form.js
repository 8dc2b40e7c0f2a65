// The spawn form of role spawn_profiles (included inline by spawn.html).
// Reads the page's JSON (#hpcgw-form-data), then: shows the custom request
// only when "Custom" is chosen (its fields disabled otherwise, so they are
// not submitted); sets each size field's min, max, default and help from
// the chosen queue; shows GPUs and the account only where they apply (the
// user's own accounts on the chosen cluster, or a notice when they have none); shows
// the queue's free nodes and, after a pause in typing, the scheduler's start
// estimate for the chosen size (the hub checks everything again).
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("hpcgw-form-data").textContent);
  var form = document.getElementById("spawn_form");
  var profile = document.getElementById("hpcgw-profile");
  var custom = document.getElementById("hpcgw-custom");
  var cq = document.getElementById("hpcgw-cq");
  var account = document.getElementById("hpcgw-account");
  var free = document.getElementById("hpcgw-free");
  var accountNotice = document.getElementById("hpcgw-account-notice");
  var estimate = document.getElementById("hpcgw-estimate");
  var sizes = ["cores", "memory_gb", "walltime_min", "gpus"];
  var timer = null;
  var asked = 0;

  function byValue(list, value) {
    for (var i = 0; i < list.length; i++) {
      if (list[i].value === value) { return list[i]; }
    }
    return null;
  }
  function el(name) { return document.getElementById(data.fields[name].id); }
  function isCustom() { return profile.value === "custom"; }
  function chosenQueue() {
    var preset = byValue(data.profiles, profile.value);
    var value = isCustom() ? (cq ? cq.value : "") : (preset ? preset.cluster_queue : "");
    return byValue(data.queues, value);
  }

  function setQueue(keepValues) {
    var queue = byValue(data.queues, cq ? cq.value : "");
    if (!queue) { return; }
    sizes.forEach(function (name) {
      var input = el(name);
      var limit = queue.limits[name];
      if (!input) { return; }
      if (input.type === "number") {
        input.min = limit.min;
        input.max = limit.max;
        input.step = limit.step;
      }
      if (!keepValues) { input.value = limit.value; }
      document.getElementById(input.id + "-help").textContent = limit.help;
    });
    var gpuRow = document.getElementById(data.fields.gpus.id + "-row");
    gpuRow.hidden = !queue.gpus;
    el("gpus").disabled = !queue.gpus || !isCustom();
    if (!queue.gpus) { el("gpus").value = "0"; }
    // Only the user's own accounts on this cluster (the default first);
    // the choice is kept when the new cluster has it too.
    var accountRow = document.getElementById("hpcgw-account-row");
    var current = queue.accounts.indexOf(account.value) >= 0 ? account.value : queue.accounts[0];
    while (account.options.length) { account.remove(0); }
    queue.accounts.forEach(function (name) {
      account.add(new Option(name, name, name === current, name === current));
    });
    accountRow.hidden = queue.accounts.length === 0;
    account.disabled = queue.accounts.length === 0 || !isCustom();
  }

  function setProfile() {
    var on = isCustom();
    if (custom) {
      custom.hidden = !on;
      custom.disabled = !on;
    }
    var preset = byValue(data.profiles, profile.value);
    document.getElementById("hpcgw-profile-help").textContent = preset ? preset.summary : "";
    if (on) { setQueue(true); }
  }

  function showStatus() {
    var queue = chosenQueue();
    accountNotice.textContent = queue ? queue.account_notice : "";
    free.textContent = queue && queue.free_text ? queue.label + ": " + queue.free_text + "." : "";
    clearTimeout(timer);
    var preset = byValue(data.profiles, profile.value);
    var can = isCustom() ? (queue && queue.estimate) : (preset && preset.estimate);
    if (!can || !data.estimate_url || !form.checkValidity()) {
      estimate.textContent = "";
      return;
    }
    timer = setTimeout(askEstimate, 700);
  }

  function askEstimate() {
    var body = {};
    new FormData(form).forEach(function (value, key) { body[key] = String(value); });
    var mine = ++asked;
    estimate.textContent = "Asking the scheduler when this would start\u2026";
    fetch(data.estimate_url, {
      method: "POST",
      credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-XSRFToken": window.jhdata.xsrf_token},
      body: JSON.stringify(body)
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        if (mine !== asked) { return; }
        if (response.status === 429) {
          var wait = parseInt(response.headers.get("Retry-After") || "3", 10);
          timer = setTimeout(askEstimate, Math.max(1, wait) * 1000);
          return;
        }
        if (!response.ok) {
          estimate.textContent = answer.message || "";
        } else if (answer.start) {
          estimate.textContent = "The scheduler expects to start it at " + answer.start.replace("T", " ") +
            " (" + answer.processors + " cores on " + answer.nodes + ").";
        } else {
          estimate.textContent = answer.message || "";
        }
      });
    }).catch(function () {
      if (mine === asked) { estimate.textContent = ""; }
    });
  }

  profile.addEventListener("change", function () { setProfile(); showStatus(); });
  if (cq) {
    cq.addEventListener("change", function () { setQueue(false); showStatus(); });
  }
  sizes.forEach(function (name) {
    var input = el(name);
    if (input) { input.addEventListener("input", showStatus); }
  });
  if (account) { account.addEventListener("change", showStatus); }
  // The server rendered the chosen state; set the rest (help, free, estimate).
  setProfile();
  if (data.error) {
    var bad = document.getElementById(data.error.id);
    if (bad && !bad.disabled) { bad.focus(); }
  }
  showStatus();
})();
