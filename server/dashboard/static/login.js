// The login form: the token goes to the server in an Authorization header, never in a URL.
// The server answers with an HttpOnly session cookie; then the dashboard loads.
"use strict";

document.getElementById("login").addEventListener("submit", async (event) => {
  event.preventDefault();
  const input = document.getElementById("token");
  const message = document.getElementById("message");
  const token = input.value.trim();
  message.className = "message";
  if (!token) {
    message.textContent = "Type the admin token.";
    return;
  }
  if (/[^\x20-\x7e]/.test(token)) {
    message.className = "message bad";
    message.textContent = "Wrong token (a browser can only send tokens of plain ASCII characters).";
    return;
  }
  message.textContent = "Checking…";
  let response;
  try {
    response = await fetch("/login", {headers: {Authorization: "Bearer " + token},
                                       credentials: "same-origin", cache: "no-store"});
  } catch (error) {
    message.className = "message bad";
    message.textContent = "The server cannot be reached.";
    return;
  }
  if (response.ok) {
    input.value = "";
    message.textContent = "Logged in.";
    location.replace("/dashboard");
  } else if (response.status === 401) {
    message.className = "message bad";
    message.textContent = "Wrong token.";
    input.select();
  } else if (response.status === 429) {  // too many wrong tokens lately: the right one still works
    message.className = "message bad";
    message.textContent = `Too many wrong tokens lately: check yours, or try again in ${response.headers.get("Retry-After") || "a few"} s.`;
  } else {
    message.className = "message bad";
    message.textContent = `The server answered ${response.status}.`;
  }
});
