// pbx-authd web UI: one small script for every page (no build step, no inline JS).
"use strict";

const $ = (id) => document.getElementById(id);
let csrf = "";

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (csrf) headers["X-CSRF-Token"] = csrf;
  const r = await fetch("/api/v1" + path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = {};
  if (r.status !== 204) { try { data = await r.json(); } catch (_) { data = {}; } }
  return { status: r.status, data };
}

function showError(text, list) {
  const e = $("error");
  e.textContent = text;
  if (list && list.length) {
    const ul = document.createElement("ul");
    for (const item of list) { const li = document.createElement("li"); li.textContent = item; ul.appendChild(li); }
    e.appendChild(ul);
  }
  e.hidden = false;
}

function clearError() { const e = $("error"); if (e) { e.hidden = true; e.textContent = ""; } }

function minutes(s) { return Math.max(1, Math.ceil(s / 60)); }

function explain(res) {
  const d = res.data || {};
  if (res.status === 429 && d.retry_after_s !== undefined) {
    const m = minutes(d.retry_after_s);
    return "Too many attempts — try again in " + m + " min.";
  }
  if (res.status === 401 && d.error === "invalid_credentials") {
    let t = "Wrong username or password.";
    if (d.attempts_left !== undefined) {
      t += " " + d.attempts_left + (d.attempts_left === 1 ? " attempt" : " attempts") +
        " left before this computer is blocked for 10 minutes.";
    }
    return t;
  }
  return d.message || ("The request failed (HTTP " + res.status + ").");
}

async function loadSession() {
  const r = await api("GET", "/session");
  if (r.status !== 200) { location.replace("/login"); return null; }
  csrf = r.data.csrf_token;
  const who = $("who");
  if (who) who.textContent = "Signed in as " + r.data.username;
  return r.data;
}

function wireLogout() {
  const b = $("logout");
  if (!b) return;
  b.addEventListener("click", async () => {
    await api("POST", "/logout");
    location.replace("/login");
  });
}

const pages = {
  async login() {
    const q = new URLSearchParams(location.search);
    if (q.get("changed") === "1") {
      const n = $("notice");
      n.textContent = "Password changed — sign in with the new password.";
      n.hidden = false;
    }
    $("login-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError();
      const r = await api("POST", "/login", { username: $("username").value, password: $("password").value });
      if (r.status === 200) {
        location.assign(r.data.must_change_password ? "/profile" : "/");
        return;
      }
      $("password").value = "";
      showError(explain(r));
      $("password").focus();
    });
  },

  async profile() {
    const s = await loadSession();
    if (!s) return;
    wireLogout();
    $("pw-username").value = s.username;
    $("first-change").hidden = !s.must_change_password;
    $("password-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError();
      const np = $("new_password").value;
      if (np !== $("confirm_password").value) {
        showError("The two new passwords do not match.");
        $("confirm_password").focus();
        return;
      }
      const r = await api("POST", "/password", { current_password: $("current_password").value, new_password: np });
      if (r.status === 204) {
        // Every session of the account ended, this one included.
        location.replace("/login?changed=1");
        return;
      }
      if (r.status === 401 && r.data.error === "unauthenticated") { location.replace("/login"); return; }
      if (r.data.error === "weak_password") showError(r.data.message, r.data.reasons);
      else if (r.data.error === "invalid_credentials") showError("The current password is wrong.");
      else showError(explain(r));
    });
  },

  async dashboard() {
    const s = await loadSession();
    if (!s) return;
    wireLogout();
    const r = await fetch("/api/v1/recovery", { headers: { "X-PBX-Poll": "1" }, credentials: "same-origin" });
    if (r.ok) {
      const d = await r.json();
      $("recovery-banner").hidden = !!d.available;
    }
  },
};

document.addEventListener("DOMContentLoaded", () => {
  const p = pages[document.body.dataset.page];
  if (p) p();
});
