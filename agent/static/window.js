// The tracker's window: refresh what the page shows every few seconds from `state` (same folder, so
// the URL's secret comes along), and ask before deleting a capture. Everything also works without it.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const every = (Number(document.body.dataset.poll) || 3) * 1000;
  const memo = $("memo");
  let memoShown = memo.value;
  let parts = {};

  document.addEventListener("submit", (event) => {
    const question = event.target.dataset.confirm;
    if (question && !window.confirm(question)) event.preventDefault();
  });

  function show(id, visible) {
    $(id).hidden = !visible;
  }

  function html(id, content) {
    if (parts[id] !== content) {
      parts[id] = content;
      $(id).innerHTML = content; // rendered and escaped by the tracker
    }
  }

  function apply(s) {
    $("state").textContent = s.label;
    $("state").className = "state state-" + s.state;
    document.title = "Workproof agent: " + s.label;
    show("stopped-note", s.state === "stopped");
    show("pause-form", s.state === "tracking");
    show("resume-form", s.state === "paused");
    $("contract-title").textContent = s.contract.title;
    $("contract-id").textContent = s.contract.id;
    // Never overwrite what the provider is typing.
    if (document.activeElement !== memo && memo.value === memoShown && s.memo !== memoShown) {
      memo.value = memoShown = s.memo;
    }
    html("notices", s.html.notices);
    show("notices", s.notices.length > 0);
    html("last", s.html.last);
    html("offers", s.html.offers);
    $("offers-note").textContent = s.offers_note;
    show("offers-note", !!s.offers_note);
    $("queue").textContent = s.queue;
    $("last-upload").textContent = s.last_upload;
    $("last-error").textContent = s.last_error || "none";
    $("blur").textContent = s.blur_text;
    $("last-problem").textContent = s.last_problem;
    show("last-problem", !!s.last_problem);
  }

  function stopped() {
    $("state").textContent = "Stopped";
    $("state").className = "state state-stopped";
    document.title = "Workproof agent: Stopped";
    show("stopped-note", true);
    show("pause-form", false);
    show("resume-form", false);
  }

  async function poll() {
    try {
      const answer = await fetch("state", { cache: "no-store" });
      if (!answer.ok) throw new Error(String(answer.status));
      apply(await answer.json());
    } catch (error) {
      stopped();
    }
    setTimeout(poll, every);
  }

  setTimeout(poll, 0);
})();
