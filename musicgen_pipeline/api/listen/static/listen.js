// The listening page's only script (no build step): seam buttons and the picture seek the soundtrack,
// and a playhead follows playback over the picture.
(function () {
  "use strict";
  const audio = document.getElementById("soundtrack");
  const timeline = document.getElementById("timeline");
  if (!audio || !timeline) return;
  const playhead = document.getElementById("playhead");
  const total = parseFloat(timeline.dataset.duration);

  function length() {
    return Number.isFinite(audio.duration) && audio.duration > 0 ? audio.duration : total;
  }
  function draw() {
    playhead.style.left = (100 * Math.min(audio.currentTime / length(), 1)) + "%";
  }
  function follow() {
    draw();
    if (!audio.paused) window.requestAnimationFrame(follow);
  }
  function seek(seconds, play) {
    audio.currentTime = Math.max(0, Math.min(seconds, length()));
    draw();
    if (play) {
      // A click is a user gesture, so playing is allowed; a refusal (no audio device) leaves it paused.
      audio.play().catch(function () {});
    }
  }

  document.querySelectorAll("[data-seek]").forEach(function (el) {
    el.addEventListener("click", function (event) {
      event.preventDefault();
      event.stopPropagation();
      seek(parseFloat(el.dataset.seek), true);
    });
  });
  timeline.addEventListener("click", function (event) {
    const box = timeline.getBoundingClientRect();
    seek(((event.clientX - box.left) / box.width) * length(), false);
  });
  audio.addEventListener("play", follow);
  audio.addEventListener("timeupdate", draw);
  audio.addEventListener("seeked", draw);
})();
