// The Work View lightbox: a click on a thumbnail shows the capture's full images (one per monitor).
// Without script the thumbnail still links to the first full image.
(function () {
  "use strict";
  var box = document.getElementById("lightbox");
  if (!box) { return; }
  var images = document.getElementById("lightbox-images");
  var caption = document.getElementById("lightbox-caption");
  var last = null;

  function close() {
    box.hidden = true;
    images.replaceChildren();
    if (last) { last.focus(); }
  }

  function open(link) {
    var urls = (link.getAttribute("data-images") || "").split(" ").filter(Boolean);
    if (!urls.length) { urls = [link.getAttribute("href")]; }
    images.replaceChildren();
    urls.forEach(function (url, index) {
      var img = document.createElement("img");
      img.src = url;
      img.alt = "Monitor " + (index + 1);
      images.appendChild(img);
    });
    caption.textContent = link.getAttribute("data-caption") || "";
    last = link;
    box.hidden = false;
    document.getElementById("lightbox-close").focus();
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a.thumb") : null;
    if (link) {
      event.preventDefault();
      open(link);
    } else if (event.target === box || event.target === images || event.target.id === "lightbox-close") {
      close();
    }
  });
  // A thumbnail link lives 5 minutes; one scrolled into view later reloads once through the page route,
  // which signs a fresh link.
  document.addEventListener("error", function (event) {
    var img = event.target;
    if (img && img.tagName === "IMG" && img.getAttribute("data-fresh") && !img.getAttribute("data-retried")) {
      img.setAttribute("data-retried", "1");
      img.src = img.getAttribute("data-fresh");
    }
  }, true);
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && !box.hidden) { close(); }
  });
})();
