// Reload the status page every 10 s unless the operator unticked the box
// (remembered in this browser). Plain JS, no build step.
(function () {
  var box = document.getElementById("auto-refresh");
  if (!box) return;
  box.checked = localStorage.getItem("concentrador-refresh") !== "off";
  box.addEventListener("change", function () {
    localStorage.setItem("concentrador-refresh", box.checked ? "on" : "off");
  });
  setInterval(function () { if (box.checked) location.reload(); }, 10000);
})();
