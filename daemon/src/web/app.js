// pbx-authd web UI: one small script for every page (no build step, no inline JS).
"use strict";

const $ = (id) => document.getElementById(id);
let csrf = "";

// A text of the page's language (/static/l10n.*.js), its {placeholders} filled in.
function t(key, args) {
  let s = (self.L && self.L[key]) || key;
  for (const [k, v] of Object.entries(args || {})) s = s.split("{" + k + "}").join(String(v));
  return s;
}

// An element with text (never HTML) and optional attributes.
function el(tag, text, attrs) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = text;
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}

// A "Show" toggle after every password field: a password typed blind once (a new
// account's temporary one) can be read before it is sent.
function wirePasswordToggles() {
  for (const input of document.querySelectorAll("input[type=password]")) {
    const wrap = el("div", null, { class: "pw" });
    input.parentNode.insertBefore(wrap, input);
    wrap.appendChild(input);
    const b = el("button", t("js.show"), { type: "button", class: "show", "aria-controls": input.id, "aria-pressed": "false" });
    b.addEventListener("click", () => {
      const shown = input.type === "text";
      input.type = shown ? "password" : "text";
      b.setAttribute("aria-pressed", String(!shown));
      b.textContent = shown ? t("js.show") : t("js.hide");
    });
    wrap.appendChild(b);
    // Sent or cleared: hidden again.
    if (input.form) input.form.addEventListener("submit", () => { input.type = "password"; b.setAttribute("aria-pressed", "false"); b.textContent = t("js.show"); });
  }
}

// The language picker on every page: the cookie for this browser, and for a signed-in
// account its own choice (its mails follow it).
// A choice with the mouse applies at once; with the keyboard, arrowing through the
// closed list only moves the choice (it would reload on the first arrow otherwise):
// Enter, or leaving the list, applies it.
function wirePicker() {
  const p = $("lang-picker");
  if (!p) return;
  const was = p.value;
  let keyed = false;
  const apply = async () => {
    if (p.value === was) return;
    const r = await api("POST", "/language", { language: p.value });
    if (r.status === 204) location.reload();
  };
  $("lang-form").addEventListener("submit", (ev) => { ev.preventDefault(); apply(); });
  p.addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); apply(); } else keyed = true; });
  p.addEventListener("change", () => { if (!keyed) apply(); });
  p.addEventListener("blur", () => { if (keyed) apply(); keyed = false; });
}

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

function showError(text, list, id) {
  const e = $(id || "error");
  e.textContent = text;
  if (list && list.length) {
    const ul = document.createElement("ul");
    for (const item of list) { const li = document.createElement("li"); li.textContent = item; ul.appendChild(li); }
    e.appendChild(ul);
  }
  e.hidden = false;
}

function clearError(id) { const e = $(id || "error"); if (e) { e.hidden = true; e.textContent = ""; } }

function notice(text, id) { const n = $(id || "notice"); n.textContent = text; n.hidden = !text; }

// The new password if both fields match; otherwise says so next to the form.
function confirmedNewPassword(errId) {
  const np = $("new_password").value;
  if (np !== $("confirm_password").value) {
    showError(t("js.passwords_differ"), null, errId);
    $("confirm_password").focus();
    return null;
  }
  return np;
}

function minutes(s) { return Math.max(1, Math.ceil(s / 60)); }

function explain(res) {
  const d = res.data || {};
  if (d.error === "second_factor_locked") return d.message;
  if (res.status === 429 && d.retry_after_s !== undefined) {
    const m = minutes(d.retry_after_s);
    return t("js.too_many", { minutes: m });
  }
  if (res.status === 401 && d.error === "invalid_credentials") {
    let w = t("js.wrong_credentials");
    if (d.attempts_left !== undefined) {
      w += " " + (d.attempts_left === 1 ? t("js.attempt_left") : t("js.attempts_left", { n: d.attempts_left }));
    }
    return w;
  }
  return d.message || t("js.request_failed", { status: res.status });
}

async function loadSession() {
  const r = await api("GET", "/session");
  if (r.status !== 200) { location.replace("/login"); return null; }
  csrf = r.data.csrf_token;
  const who = $("who");
  if (who) who.textContent = t("js.signed_in_as", { user: r.data.username });
  // The header: the admin's sections for the admin, the current page marked.
  for (const li of document.querySelectorAll(".admin-link")) li.hidden = r.data.role !== "admin";
  for (const a of document.querySelectorAll(".bar nav a")) {
    if (a.getAttribute("href") === location.pathname) a.setAttribute("aria-current", "page");
  }
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

// The dashboard's "Ways back in", all from GET /recovery (the one source of truth:
// `email_ready`, `missing`, `codes_left`, `button`): each way's state, each missing
// step a link to where it is done, and the banner when only an erase is left.
function showWays(d, admin) {
  const codes = d.codes_left || 0;
  const mode = d.button && d.button.mode !== undefined ? d.button.mode : d.button;
  const emailReady = admin ? !!d.email_ready : !!d.available;
  const buttonWorks = mode === "credentials" || (mode === "mail" && emailReady);
  // A clock below the newest time this box has seen: phone codes cannot be checked.
  $("clock-banner").textContent = d.clock ? d.clock.message : "";
  $("clock-banner").hidden = !d.clock;
  if (!admin) {
    $("user-ways").textContent = d.available ? t("js.user_email_available") : t("js.user_email_unavailable");
    $("user-ways").hidden = false;
    return;
  }
  $("ways").hidden = false;
  $("recovery-banner").hidden = emailReady || codes > 0 || buttonWorks;
  const confirmed = d.email_confirmed_at ? localDate(d.email_confirmed_at) : "";
  $("way-email").textContent = emailReady ? t("js.way_email_ready", { date: confirmed }) : t("js.way_not_ready");
  $("way-email").className = emailReady ? "ok" : "bad";
  // Each missing step, in order, as a link (or the button that does it).
  const steps = {
    smtp: [t("js.step_smtp"), "/settings/email"],
    bind: [t("js.step_bind"), "/profile#email-section"],
    confirm: [t("js.step_confirm"), "#check-now"],
    stale: [t("js.step_stale", { date: confirmed || t("js.never") }), "#check-now"],
    check_failed: [t("js.step_check_failed"), "#check-now"],
  };
  $("email-steps").replaceChildren(...(d.missing || []).map((m) => {
    const [text, href] = steps[m] || [m, "/"];
    const li = el("li");
    li.appendChild(el("a", text, { href }));
    return li;
  }));
  const dr = d.drill || {};
  $("drill-state").textContent = dr.last_error
    ? t("js.check_failed_at", { stage: stageWords(dr.last_error.stage), detail: dr.last_error.message, when: localTime(dr.next_due) })
    : (dr.last_sent ? t("js.check_last_sent", { date: localDate(dr.last_sent) }) : "");
  $("drill-state").hidden = !$("drill-state").textContent;
  $("drill-state").className = dr.last_error || d.email_stale ? "warning" : "hint";
  $("check-now").hidden = !d.available;
  $("check-now").onclick = async () => {
    clearError("check-error");
    notice(t("js.check_sending"), "check-notice");
    const r = await api("POST", "/recovery/check");
    if (r.status === 200 && r.data.ok) notice(t("js.check_sent"), "check-notice");
    else { notice("", "check-notice"); showError(r.status === 200 ? t("js.check_failed", { stage: stageWords(r.data.stage), detail: withDetail(r.data) }) : explain(r), null, "check-error"); }
  };
  $("way-codes").textContent = codes ? t("js.codes_left", { n: codes }) : t("js.way_not_ready");
  $("way-codes").className = codes ? "ok" : "bad";
  $("codes-link").textContent = codes ? t("js.codes_manage") : t("js.codes_make");
  const words = { credentials: t("js.button_credentials"),
    mail: emailReady ? t("js.button_mail") : t("js.button_mail_dead"),
    off: t("js.button_off") };
  $("way-button").textContent = words[mode] || "";
  $("way-button").className = buttonWorks ? "ok" : "bad";
  // The select shows what the button does now; a change waits for the press.
  $("button-mode").value = mode;
  const pending = d.button && d.button.pending;
  $("button-pending").textContent = pending ? t("js.button_pending", { mode: optionText(pending.mode) }) : "";
  $("button-pending").hidden = !pending;
  $("button-form").onsubmit = async (ev) => {
    ev.preventDefault();
    clearError("button-error");
    notice("", "button-notice");
    const r = await api("PUT", "/recovery/button", { mode: $("button-mode").value, password: $("button_password").value });
    $("button_password").value = "";
    if (r.status === 202) {
      notice(t("js.button_press_now", { minutes: minutes(r.data.pending.expires_in_s) }), "button-notice");
      $("button-pending").textContent = t("js.button_pending", { mode: optionText(r.data.pending.mode) });
      $("button-pending").hidden = false;
      $("button-mode").value = mode;
    } else if (r.data.error === "invalid_credentials") showError(t("js.button_wrong_password"), null, "button-error");
    else showError(explain(r), null, "button-error");
  };
}

// The words of a button mode, as its option in the select says them.
function optionText(mode) {
  const o = document.querySelector("#button-mode option[value='" + mode + "']");
  return o ? o.textContent : mode;
}

// A mail failure's sentence, the system's own words (e.g. "os error 111") after it.
function withDetail(d) { return (d.message || "") + (d.detail ? " (" + d.detail + ")" : ""); }

// An SMTP stage in words.
// Where a directory test stopped, in words.
function dirStageWords(stage) {
  const words = {
    connect: t("js.dstage_connect"), tls: t("js.dstage_tls"), reply: t("js.dstage_reply"),
    service_bind: t("js.dstage_service_bind"), search: t("js.dstage_search"),
    password: t("js.dstage_password"), role: t("js.dstage_role"), settings: t("js.dstage_settings"),
  };
  return words[stage] || stage;
}

function stageWords(stage) {
  const w = { dns: t("js.stage_dns"), connect: t("js.stage_connect"), tls: t("js.stage_tls"), auth: t("js.stage_auth"), send: t("js.stage_send") };
  return w[stage] || stage;
}

// The profile page's two-factor section: set up (secret + QR), turn on, turn off.
async function wireTwoFactor() {
  const s = await api("GET", "/session");
  if (s.status !== 200 || s.data.must_change_password) return;
  const p = await api("GET", "/profile");
  $("tfa-section").hidden = false;
  $("tfa-required").hidden = !s.data.two_factor_enrollment_required;
  const on = p.status === 200 && p.data.two_factor;
  $("tfa-state").textContent = on ? t("js.tfa_on") : t("js.tfa_off");
  $("tfa-setup-form").hidden = on;
  $("tfa-disable-form").hidden = !on;
  $("tfa-setup-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearError("tfa-setup-error");
    const r = await api("POST", "/2fa/setup", { password: $("tfa_password").value });
    $("tfa_password").value = "";
    if (r.status !== 200) { showError(r.data.error === "invalid_credentials" ? t("js.password_wrong") : explain(r), null, "tfa-setup-error"); return; }
    // In groups of four, as people read and type it (apps ignore the spaces).
    $("tfa-secret").textContent = r.data.secret.replace(/(.{4})(?=.)/g, "$1 ");
    const svg = new DOMParser().parseFromString(r.data.qr_svg, "image/svg+xml").documentElement;
    $("tfa-qr").replaceChildren(document.importNode(svg, true));
    $("tfa-setup-form").hidden = true;
    $("tfa-enroll").hidden = false;
    $("tfa_code").focus();
  });
  $("tfa-enable-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearError("tfa-enable-error");
    const r = await api("POST", "/2fa/enable", { code: $("tfa_code").value });
    if (r.status === 204) { location.replace("/login?twofactor=1"); return; }
    showError(explain(r), null, "tfa-enable-error");
  });
  $("tfa-disable-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearError("tfa-disable-error");
    const r = await api("POST", "/2fa/disable", { password: $("tfa_off_password").value, code: $("tfa_off_code").value });
    $("tfa_off_password").value = ""; $("tfa_off_code").value = "";
    if (r.status === 204) { notice(t("js.tfa_off"), "tfa-notice"); $("tfa-state").textContent = t("js.tfa_off"); return; }
    showError(r.data.error === "invalid_credentials" ? t("js.password_or_code_wrong") : explain(r), null, "tfa-disable-error");
  });
}

// A time in the browser's own zone, e.g. "14:05" today or "6 Dec, 14:05".
function localTime(unix) {
  const d = new Date(unix * 1000), now = new Date();
  const opts = d.toDateString() === now.toDateString() ? { hour: "2-digit", minute: "2-digit" }
    : { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" };
  return d.toLocaleString(document.documentElement.lang || undefined, opts);
}

// A date in the browser's own zone and language.
function localDate(unix) {
  return new Date(unix * 1000).toLocaleDateString(document.documentElement.lang || undefined, { year: "numeric", month: "short", day: "numeric" });
}

// The audit's event kinds in words (the ids stay in the CSV and the API).
function eventWords() {
  const EVENTS = {
    login: t("js.ev_login"),
    login_failed: t("js.ev_login_failed"),
    login_locked: t("js.ev_login_locked"),
    account_protected: t("js.ev_account_protected"),
    audit_overflow: t("js.ev_audit_overflow"),
    password_changed: t("js.ev_password_changed"),
    password_reset: t("js.ev_password_reset"),
    forgot_request: t("js.ev_forgot_request"),
    recovery_press: t("js.ev_recovery_press"),
    credentials_reset: t("js.ev_credentials_reset"),
    admins_disabled: t("js.ev_admins_disabled"),
    recovery_codes_generated: t("js.ev_recovery_codes_generated"),
    recovery_email_changed: t("js.ev_recovery_email_changed"),
    recovery_email_confirmed: t("js.ev_recovery_email_confirmed"),
    recovery_email_stale: t("js.ev_recovery_email_stale"),
    recovery_check_failed: t("js.ev_recovery_check_failed"),
    two_factor_enabled: t("js.ev_two_factor_enabled"),
    two_factor_disabled: t("js.ev_two_factor_disabled"),
    two_factor_failed: t("js.ev_two_factor_failed"),
    two_factor_locked: t("js.ev_two_factor_locked"),
    account_created: t("js.ev_account_created"),
    account_deleted: t("js.ev_account_deleted"),
    account_email_changed: t("js.ev_account_email_changed"),
    account_disabled: t("js.ev_account_disabled"),
    account_enabled: t("js.ev_account_enabled"),
    temporary_password_set: t("js.ev_temporary_password_set"),
    session_revoked: t("js.ev_session_revoked"),
    smtp_settings_saved: t("js.ev_smtp_settings_saved"),
    smtp_settings_changed: t("js.ev_smtp_settings_changed"),
    smtp_test_sent: t("js.ev_smtp_test_sent"),
    button_mode_requested: t("js.ev_button_mode_requested"),
    button_mode_changed: t("js.ev_button_mode_changed"),
    button_mode_cancelled: t("js.ev_button_mode_cancelled"),
    factory_reset: t("js.ev_factory_reset"),
    factory_reset_failed: t("js.ev_factory_reset_failed"),
    login_untrusted: t("js.ev_login_untrusted"),
    access_changed: t("js.ev_access_changed"),
    directory_changed: t("js.ev_directory_changed"),
    access_confirmed: t("js.ev_access_confirmed"),
    access_reverted: t("js.ev_access_reverted"),
    installer_created: t("js.ev_installer_created"),
    installer_ended: t("js.ev_installer_ended"),
    alerts_held: t("js.ev_alerts_held"),
  };
  return EVENTS;
}

// The alert kinds of the profile's switches, in words.
function alertWords() {
  return {
    new_device: t("js.alert_new_device"),
    address_blocked: t("js.alert_address_blocked"),
    account_cap: t("js.alert_account_cap"),
    factor_locked: t("js.alert_factor_locked"),
    two_factor_off: t("js.alert_two_factor_off"),
    codes_regenerated: t("js.alert_codes_regenerated"),
    credentials_reset: t("js.alert_credentials_reset"),
    factory_reset_requested: t("js.alert_factory_reset_requested"),
    smtp_changed: t("js.alert_smtp_changed"),
    admin_created: t("js.alert_admin_created"),
    probation_reverted: t("js.alert_probation_reverted"),
    installer_sign_in: t("js.alert_installer_sign_in"),
  };
}

// The alert switches of the profile: one checkbox per kind; those that always come are
// shown checked and disabled.
async function wireAlerts() {
  const p = await api("GET", "/profile");
  if (p.status !== 200 || !p.data.alerts) return;
  const words = alertWords();
  const box = $("alert-switches");
  const always = p.data.alerts_always_on || [];
  for (const [kind, on] of Object.entries(p.data.alerts)) {
    const input = el("input", null, { type: "checkbox", id: "alert-" + kind, "data-kind": kind });
    input.checked = on;
    const fixed = always.includes(kind);
    if (fixed) input.disabled = true;
    const label = el("label", null, { class: "check", for: "alert-" + kind });
    label.appendChild(input);
    label.appendChild(document.createTextNode(" " + (words[kind] || kind) + (fixed ? " " + t("js.alert_always") : "")));
    box.appendChild(label);
  }
  $("alerts-section").hidden = false;
  $("alerts-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    clearError("alerts-error");
    notice("", "alerts-notice");
    const alerts = {};
    for (const c of box.querySelectorAll("input[data-kind]")) if (!c.disabled) alerts[c.dataset.kind] = c.checked;
    const r = await api("PUT", "/profile/alerts", { alerts, current_password: $("alerts_password").value });
    $("alerts_password").value = "";
    if (r.status === 200) notice(t("js.alerts_saved"), "alerts-notice");
    else showError(explain(r), null, "alerts-error");
  });
}

// A list of networks as typed (one per line, or separated by commas or spaces).
function networksOf(text) { return text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean); }

function changeWords(names) {
  const w = {
    admin_networks: t("js.change_admin_networks"),
    user_networks: t("js.change_user_networks"),
    https_only: t("js.change_https_only"),
    require_2fa_for_admin: t("js.change_require_2fa_for_admin"),
    sign_in: t("js.change_sign_in"),
  };
  return names.map((n) => w[n] || n).join("; ");
}

function utc(unix) { return unix ? new Date(unix * 1000).toISOString().slice(0, 16).replace("T", " ") : "—"; }

// A table row of text cells (never HTML), plus optional action buttons.
function row(cells, buttons) {
  const tr = document.createElement("tr");
  for (const c of cells) { const td = document.createElement("td"); td.textContent = c === null || c === undefined ? "—" : String(c); tr.appendChild(td); }
  const td = document.createElement("td");
  for (const [label, name, fn, cls] of buttons || []) {
    const b = document.createElement("button"); b.type = "button"; b.textContent = label; b.setAttribute("aria-label", name); b.addEventListener("click", fn); if (cls) b.className = cls; td.appendChild(b);
  }
  tr.appendChild(td);
  return tr;
}

const pages = {
  async directory() {
    const s = await loadSession();
    if (!s) return;
    wireLogout();
    if (s.installer) {
      $("installer-note").hidden = false;
      $("directory-form").hidden = true;
      $("test-form").hidden = true;
      return;
    }
    const ldapShown = () => { $("ldap-fields").hidden = !$("ldap-on").checked; };
    $("ldap-on").addEventListener("change", ldapShown);
    const show = (v) => {
      $("source-note").hidden = v.source !== "config";
      for (const i of [0, 1]) {
        const r = v.radius[i] || { address: "", secret_set: false, ca: "", client_cert: "", client_key_set: false };
        $("r" + i + "-address").value = r.address;
        $("r" + i + "-secret").value = "";
        $("r" + i + "-secret-kept").hidden = !r.secret_set;
        $("r" + i + "-ca").value = r.ca;
        $("r" + i + "-cert").value = r.client_cert;
        $("r" + i + "-key").value = "";
        $("r" + i + "-key-kept").hidden = !r.client_key_set;
      }
      $("admin-attribute").value = v.radius_admin_attribute;
      $("admin-value").value = v.radius_admin_value;
      $("user-value").value = v.radius_user_value || "";
      const l = v.ldap;
      $("ldap-on").checked = !!l;
      if (l) {
        $("ldap-url").value = l.url;
        $("ldap-ca").value = l.ca;
        $("bind-dn").value = l.bind_dn;
        $("bind-password").value = "";
        $("bind-kept").hidden = !l.bind_password_set;
        $("base-dn").value = l.base_dn;
        $("user-filter").value = l.user_filter;
        $("admin-group").value = l.admin_group;
        $("user-group").value = l.user_group || "";
      }
      $("timeout").value = v.timeout_s;
      $("retries").value = v.retries;
      ldapShown();
    };
    // A secret left empty keeps the saved one (for the same server).
    const kept = (id) => $(id).value ? $(id).value : undefined;
    const form = () => {
      const radius = [];
      for (const i of [0, 1]) {
        const address = $("r" + i + "-address").value.trim();
        if (!address) continue;
        radius.push({
          address,
          secret: kept("r" + i + "-secret"),
          ca: $("r" + i + "-ca").value,
          client_cert: $("r" + i + "-cert").value,
          client_key: kept("r" + i + "-key"),
        });
      }
      return {
        timeout_s: Number($("timeout").value),
        retries: Number($("retries").value),
        radius_admin_attribute: $("admin-attribute").value.trim(),
        radius_admin_value: $("admin-value").value.trim(),
        radius_user_value: $("user-value").value.trim() || null,
        radius,
        ldap: $("ldap-on").checked ? {
          url: $("ldap-url").value.trim(),
          ca: $("ldap-ca").value,
          bind_dn: $("bind-dn").value.trim(),
          bind_password: kept("bind-password"),
          base_dn: $("base-dn").value.trim(),
          user_filter: $("user-filter").value.trim(),
          admin_group: $("admin-group").value.trim(),
          user_group: $("user-group").value.trim() || null,
        } : null,
        current_password: $("directory-password").value,
      };
    };
    const r = await api("GET", "/settings/directory");
    if (r.status === 200) show(r.data); else showError(explain(r));
    $("directory-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError();
      notice("");
      const d = await api("PUT", "/settings/directory", form());
      $("directory-password").value = "";
      if (d.status === 200) { show(d.data); notice(t("js.directory_saved")); }
      else showError(explain(d));
    });
    $("test-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError("test-error");
      notice(t("js.directory_testing"), "test-notice");
      const d = await api("POST", "/settings/directory/test", {
        username: $("test-username").value, password: $("test-password").value,
      });
      $("test-password").value = "";
      notice("", "test-notice");
      if (d.status === 200 && d.data.ok) notice(d.data.message, "test-notice");
      else if (d.status === 200) showError(t("js.directory_test_failed", { stage: dirStageWords(d.data.stage), message: d.data.message }), null, "test-error");
      else showError(explain(d), null, "test-error");
    });
  },

  async access() {
    const s = await loadSession();
    if (!s) return;
    wireLogout();
    if (s.installer) {
      $("installer-note").hidden = false;
      $("access-form").hidden = true;
      $("installer-form").hidden = true;
    }
    let timer = null;
    const fill = (list, localId, textId) => {
      $(localId).checked = list.includes("local");
      $(textId).value = list.filter((n) => n !== "local").join("\n");
    };
    const listOf = (localId, textId) => ($(localId).checked ? ["local"] : []).concat(networksOf($(textId).value));
    const show = (v) => {
      fill(v.admin_networks, "admin-local", "admin-networks");
      fill(v.user_networks, "user-local", "user-networks");
      $("https-only").checked = v.https_only;
      $("require-2fa").checked = v.require_2fa_for_admin;
      $("sign-in").value = v.sign_in;
      const out = $("you-outside");
      out.hidden = v.you_are_trusted;
      out.textContent = v.you_are_trusted ? "" : t("js.you_outside", { ip: v.your_address });
      const p = v.probation;
      $("probation").hidden = !p;
      if (timer) { clearInterval(timer); timer = null; }
      if (!p) return;
      let left = p.reverts_in_s;
      const tick = () => {
        $("probation-text").textContent = t("js.probation_left", {
          time: Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0"),
          changes: changeWords(p.changes),
          user: p.by,
        });
        if (left > 0) left -= 1; else { clearInterval(timer); timer = null; setTimeout(load, 1500); }
      };
      tick();
      timer = setInterval(tick, 1000);
      $("probation-how").textContent = p.confirmable ? t("js.probation_confirm_here") : t("js.probation_sign_in_again");
      $("confirm-button").hidden = !p.confirmable || !!s.installer;
    };
    const load = async () => {
      const r = await api("GET", "/settings/access");
      if (r.status === 200) show(r.data); else showError(explain(r));
    };
    $("confirm-button").addEventListener("click", async () => {
      clearError("confirm-error");
      const r = await api("POST", "/settings/access/confirm", {});
      if (r.status === 204) { notice(t("js.access_confirmed")); await load(); }
      else showError(explain(r), null, "confirm-error");
    });
    $("access-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError();
      notice("");
      const r = await api("PUT", "/settings/access", {
        admin_networks: listOf("admin-local", "admin-networks"),
        user_networks: listOf("user-local", "user-networks"),
        https_only: $("https-only").checked,
        require_2fa_for_admin: $("require-2fa").checked,
        sign_in: $("sign-in").value,
        current_password: $("access-password").value,
      });
      $("access-password").value = "";
      if (r.status === 200) {
        show(r.data);
        notice(r.data.probation ? t("js.access_saved_probation") : t("js.access_saved"));
      } else showError(explain(r));
    });
    const installers = async () => {
      const r = await api("GET", "/accounts");
      const rows = $("installer-rows");
      rows.textContent = "";
      const list = r.status === 200 ? r.data.filter((a) => a.installer) : [];
      $("no-installers").hidden = list.length > 0;
      for (const a of list) {
        const nets = a.installer.networks.length ? a.installer.networks.join(", ") : t("js.networks_of_role");
        const buttons = s.installer ? [] : [[t("js.end_now"), t("js.end_installer_named", { user: a.username }), async () => {
          const d = await api("DELETE", "/installers/" + encodeURIComponent(a.username));
          if (d.status === 204) { notice(t("js.installer_ended", { user: a.username }), "inst-notice"); installers(); }
          else showError(explain(d), null, "inst-error");
        }, "danger"]];
        rows.appendChild(row([a.username, a.role === "admin" ? t("js.role_admin") : t("js.role_user"), localTime(a.installer.until), nets], buttons));
      }
    };
    $("installer-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError("inst-error");
      notice("", "inst-notice");
      const r = await api("POST", "/installers", {
        username: $("inst-username").value,
        role: $("inst-role").value,
        hours: Number($("inst-hours").value),
        networks: networksOf($("inst-networks").value),
        current_password: $("inst-password").value,
      });
      $("inst-password").value = "";
      if (r.status === 201) {
        notice(t("js.installer_issued", { user: r.data.username, password: r.data.password, until: localTime(r.data.expires_at) }), "inst-notice");
        $("installer-form").reset();
        installers();
      } else showError(explain(r), null, "inst-error");
    });
    await load();
    await installers();
  },

  async login() {
    const q = new URLSearchParams(location.search);
    if (q.get("changed") === "1") notice(t("js.changed_sign_in"));
    // The code owed: the box's second factor, or the one the company's sign-in server
    // asks for (its own words shown; the phone-app hint is not for it).
    const codeStep = (d) => {
      const server = !!d.directory_code;
      $("login-form").hidden = true;
      $("code-form").hidden = false;
      $("code-intro").textContent = server ? t("js.dir_code_intro") : t("js.tfa_code_intro");
      $("server-says").hidden = !(server && d.message);
      $("server-says").textContent = server && d.message ? d.message : "";
      $("otp-label").textContent = server ? t("js.dir_code_label") : t("js.tfa_code_label");
      $("otp-hint").hidden = server;
      $("otp").setAttribute("inputmode", server ? "text" : "numeric");
      $("otp").focus();
    };
    if (q.get("twofactor") === "1") notice(t("js.tfa_on_sign_in"));
    $("login-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError();
      const r = await api("POST", "/login", { username: $("username").value, password: $("password").value });
      if (r.status === 200 && r.data.two_factor_required) {
        codeStep(r.data);
        return;
      }
      if (r.status === 200) {
        location.assign(r.data.must_change_password || r.data.two_factor_enrollment_required ? "/profile" : "/");
        return;
      }
      $("password").value = "";
      showError(explain(r));
      $("password").focus();
    });
    $("code-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError("code-error");
      const r = await api("POST", "/login/2fa", { code: $("otp").value });
      $("otp").value = "";
      if (r.status === 200 && r.data.two_factor_required) {
        codeStep(r.data);
        return;
      }
      if (r.status === 200) {
        // Just turned on: the codes that stand in for a lost phone, offered now.
        const next = q.get("twofactor") === "1" ? "/recovery-codes?offer=2fa" : "/";
        location.assign(r.data.must_change_password ? "/profile" : next);
        return;
      }
      if (r.status === 401 && r.data.error === "unauthenticated") {
        $("code-form").hidden = true; $("login-form").hidden = false;
        showError(t("js.presession_over"));
        return;
      }
      showError(r.status === 401 ? (t("js.code_wrong") + " " + explain(r).replace(t("js.wrong_credentials"), "").trim()).trim() : explain(r), null, "code-error");
      $("otp").focus();
    });
  },

  async profile() {
    wireTwoFactor();
    const s = await loadSession();
    if (!s) return;
    wireLogout();
    $("pw-username").value = s.username;
    // The label password (the admin's first sign-in, or after the button's reset), or a
    // temporary password an admin set: each says so, and what saving does.
    $("first-change").hidden = !s.must_change_password || s.username !== "admin";
    $("first-change-temp").hidden = !s.must_change_password || s.username === "admin";
    if (!s.must_change_password) {
      wireAlerts();
      const p = await api("GET", "/profile");
      if (p.status === 200) { $("email").value = p.data.email || ""; $("email-section").hidden = false; }
      $("email-form").addEventListener("submit", async (ev) => {
        ev.preventDefault();
        clearError("email-error");
        notice("", "email-notice");
        const r = await api("PUT", "/profile", { email: $("email").value, current_password: $("email_password").value });
        $("email_password").value = "";
        if (r.status === 200) notice(r.data.email ? t("js.email_saved", { email: r.data.email }) : t("js.email_removed"), "email-notice");
        else if (r.data.error === "invalid_credentials") showError(t("js.email_password_wrong"), null, "email-error");
        else showError(explain(r), null, "email-error");
      });
    }
    $("password-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError();
      const np = confirmedNewPassword();
      if (np === null) return;
      const r = await api("POST", "/password", { current_password: $("current_password").value, new_password: np });
      if (r.status === 204) {
        // Every session of the account ended, this one included.
        location.replace("/login?changed=1");
        return;
      }
      if (r.status === 401 && r.data.error === "unauthenticated") { location.replace("/login"); return; }
      if (r.data.error === "weak_password") showError(r.data.message, r.data.reasons);
      else if (r.data.error === "invalid_credentials") showError(t("js.current_password_wrong"));
      else showError(explain(r));
    });
  },

  async dashboard() {
    const s = await loadSession();
    if (!s) return;
    wireLogout();
    const r = await fetch("/api/v1/recovery", { headers: { "X-PBX-Poll": "1" }, credentials: "same-origin" });
    if (r.ok) showWays(await r.json(), s.role === "admin");
  },

  async sessions() {
    const s = await loadSession();
    if (!s) return;
    wireLogout();
    if (s.role === "admin") $("sessions-scope").textContent = t("js.sessions_all");
    const load = async () => {
      const r = await api("GET", "/sessions");
      if (r.status !== 200) { showError(explain(r)); return; }
      const rows = r.data.map((x) => row(
        [x.username + (x.via ? " " + t("js.via", { via: x.via }) : ""), x.ip, x.browser + (x.current ? " " + t("js.this_browser") : ""), localTime(x.started_at), localTime(x.last_seen_at)],
        x.current ? [] : [[t("js.end"), t("js.end_session_of", { user: x.username, ip: x.ip }), async () => {
          clearError(); notice("");
          const d = await api("DELETE", "/sessions/" + x.id);
          if (d.status === 204) { notice(t("js.session_ended")); load(); } else showError(explain(d));
        }]]));
      $("sessions-rows").replaceChildren(...rows);
    };
    $("end-others").addEventListener("click", async () => {
      clearError();
      const r = await api("DELETE", "/sessions");
      if (r.status === 200) { notice(t("js.sessions_ended", { n: r.data.ended })); load(); } else showError(explain(r));
    });
    load();
  },

  async accounts() {
    const s = await loadSession();
    if (!s) return;
    wireLogout();
    let editing = null;
    const load = async () => {
      const r = await api("GET", "/accounts");
      if (r.status !== 200) { showError(explain(r), null, "list-error"); return; }
      const rows = r.data.map((a) => row(
        [a.username + (a.directory ? " " + t("js.via", { via: a.directory }) : ""), (a.role === "admin" ? t("js.role_admin") : t("js.role_user")) + (a.disabled ? " " + t("js.disabled") : ""), a.email ? a.email + (a.email_confirmed ? "" : " " + t("js.unconfirmed")) : null, a.two_factor ? t("js.on") : t("js.off"), a.last_sign_in ? localTime(a.last_sign_in) : null],
        a.username === "admin" ? [] : [
          ...(a.disabled ? [[t("js.enable"), t("js.enable_user", { user: a.username }), async () => {
            const e = await api("PUT", "/accounts/" + encodeURIComponent(a.username), { enabled: true });
            if (e.status === 200) { notice(t("js.enabled", { user: a.username })); load(); } else showError(explain(e), null, "list-error");
          }]] : []),
          [t("js.change"), t("js.change_user", { user: a.username }), () => {
            editing = a.username; $("edit-name").textContent = a.username; $("edit-email").value = a.email || "";
            $("edit-password").value = ""; $("edit-section").hidden = false; $("edit-password").focus();
          }],
          [t("js.delete"), t("js.delete_user", { user: a.username }), (ev) => {
            // Asked in the row itself (no browser dialog): what ends, and a way back.
            const cell = ev.target.parentNode;
            const ask = el("div", null, { class: "ask", role: "group", "aria-label": t("js.delete_ask", { user: a.username }) });
            ask.appendChild(el("p", t("js.delete_ask", { user: a.username })));
            const yes = el("button", t("js.delete_yes", { user: a.username }), { type: "button", class: "danger" });
            const no = el("button", t("js.delete_no"), { type: "button", class: "secondary" });
            no.addEventListener("click", () => { load(); });
            yes.addEventListener("click", async () => {
              const d = await api("DELETE", "/accounts/" + encodeURIComponent(a.username));
              if (d.status === 204) { notice(t("js.deleted", { user: a.username })); load(); } else showError(explain(d), null, "list-error");
            });
            ask.append(yes, no);
            cell.replaceChildren(ask);
            no.focus();
          }, "danger"]]));
      $("accounts-rows").replaceChildren(...rows);
    };
    $("new-role").addEventListener("change", () => { $("admin-confirm").hidden = $("new-role").value !== "admin"; });
    $("account-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      for (const id of ["error", "username-error", "password-error", "email-error"]) clearError(id);
      const body = { username: $("new-username").value, role: $("new-role").value, password: $("new-password").value };
      if ($("new-email").value) body.email = $("new-email").value;
      if (body.role === "admin") {
        body.current_password = $("acting-password").value;
        if ($("acting-code").value) body.code = $("acting-code").value;
      }
      const r = await api("POST", "/accounts", body);
      if (r.status === 201) { notice(t("js.created", { user: r.data.username })); $("account-form").reset(); $("admin-confirm").hidden = true; load(); return; }
      const m = r.data.message || explain(r);
      if (r.data.error === "weak_password") showError(m, r.data.reasons, "password-error");
      else if (r.status === 409 || /username/i.test(m)) showError(m, null, "username-error");
      else if (/email|address/i.test(m)) showError(m, null, "email-error");
      else showError(explain(r));
    });
    $("edit-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError("edit-error");
      const body = { email: $("edit-email").value };
      if ($("edit-password").value) body.password = $("edit-password").value;
      const r = await api("PUT", "/accounts/" + encodeURIComponent(editing), body);
      if (r.status === 200) { notice(t("js.saved_user", { user: editing })); $("edit-section").hidden = true; load(); return; }
      showError(r.data.message || explain(r), r.data.reasons, "edit-error");
    });
    load();
  },

  async audit() {
    const s = await loadSession();
    if (!s) return;
    wireLogout();
    const words = eventWords();
    for (const [id, w] of Object.entries(words).sort((a, b) => a[1].localeCompare(b[1]))) {
      $("filter-event").appendChild(el("option", w, { value: id }));
    }
    const q = new URLSearchParams(location.search);
    $("filter-event").value = q.get("event") || "";
    $("filter-user").value = q.get("user") || "";
    $("filter-text").value = q.get("q") || "";
    const page = Math.max(1, Number(q.get("page")) || 1);
    const filter = new URLSearchParams();
    for (const k of ["event", "user", "q"]) if (q.get(k)) filter.set(k, q.get(k));
    $("audit-csv").href = "/api/v1/audit.csv?" + filter;
    const r = await fetch("/api/v1/audit?" + filter + "&page=" + page + "&per_page=50", { credentials: "same-origin" });
    if (!r.ok) { showError(t("js.audit_failed", { status: r.status })); return; }
    const total = Number(r.headers.get("x-total-count")) || 0;
    const list = await r.json();
    $("audit-rows").replaceChildren(...list.map((e) => {
      const when = localTime(e.at) + " (" + utc(e.at) + " UTC)" + (e.clock_unset ? " " + t("js.clock_unset_mark") : "");
      const tr = row([when, words[e.event] || e.event, e.username, e.ip, e.detail]);
      tr.lastChild.remove();
      // The id stays at hand for whoever searches the CSV or the syslog for it.
      tr.children[1].title = e.event;
      return tr;
    }));
    $("audit-count").textContent = t("js.audit_count", { n: total });
    const pages = Math.max(1, Math.ceil(total / 50));
    $("audit-page").textContent = t("js.audit_page", { page, pages });
    const go = (p) => { filter.set("page", p); location.assign("/audit?" + filter); };
    $("audit-prev").disabled = page <= 1;
    $("audit-next").disabled = page >= pages;
    $("audit-prev").addEventListener("click", () => go(page - 1));
    $("audit-next").addEventListener("click", () => go(page + 1));
  },

  async device() {
    const s = await loadSession();
    if (!s) return;
    wireLogout();
    const r = await api("GET", "/device");
    if (r.status !== 200) { showError(explain(r)); return; }
    const d = r.data;
    $("dev-model").textContent = d.model || "—";
    $("dev-serial").textContent = d.serial || "—";
    $("dev-mac").textContent = d.mac || "—";
    $("dev-firmware").textContent = d.firmware_version + " (" + d.firmware_build + ")";
    const u = d.uptime_s;
    $("dev-uptime").textContent = t("js.uptime", { d: Math.floor(u / 86400), h: Math.floor(u % 86400 / 3600), m: Math.floor(u % 3600 / 60) });
    $("dev-flash").textContent = d.data_db_bytes === null ? "—" : t("js.kib", { n: (d.data_db_bytes / 1024).toFixed(0) });
    const rc = d.recovery || {};
    const modeWords = { credentials: t("js.button_credentials"), mail: t("js.button_mail"), off: t("js.button_off") };
    $("dev-recovery").textContent = t("js.device_ways", {
      email: rc.email_ready ? t("js.ready") : t("js.way_not_ready"),
      codes: rc.codes_left ? t("js.codes_left", { n: rc.codes_left }) : t("js.way_not_ready"),
      button: rc.button ? modeWords[rc.button.mode] || rc.button.mode : "—",
    });
    const sl = d.syslog || {};
    $("dev-syslog").textContent = sl.enabled ? t("js.syslog_counts", { sent: sl.sent, dropped: sl.dropped }) : t("js.syslog_off");
  },

  async "factory-reset"() {
    const s = await loadSession();
    if (!s) return;
    wireLogout();
    // The last warning names what is still ready: an erase is the last resort.
    const w = await api("GET", "/recovery");
    if (w.status === 200) {
      const d = w.data, ready = [];
      const mode = d.button && d.button.mode;
      if (d.email_ready) ready.push(t("js.left_email"));
      if (d.codes_left) ready.push(t("js.left_codes", { n: d.codes_left }));
      if (mode === "credentials") ready.push(t("js.left_button_credentials"));
      if (mode === "mail" && d.email_ready) ready.push(t("js.left_button_mail"));
      $("ways-left").textContent = ready.length
        ? t("js.still_ready", { ways: ready.join("; ") })
        : t("js.none_left");
    }
    $("reset-device-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError();
      if ($("confirm").value !== "ERASE") { showError(t("js.type_erase")); return; }
      const r = await api("POST", "/factory-reset", { password: $("password").value, confirm: $("confirm").value });
      $("password").value = "";
      if (r.status !== 202) { showError(explain(r)); return; }
      $("reset-device-form").hidden = true;
      $("ways-left").hidden = true;
      $("erasing").hidden = false;
      $("erase-state").focus();
      // Done when the box answers again and this session is gone with the data.
      const started = Date.now();
      const poll = async () => {
        try {
          const h = await fetch("/healthz", { cache: "no-store" });
          if (h.ok) {
            const q = await fetch("/api/v1/session", { headers: { "X-PBX-Poll": "1" }, credentials: "same-origin" });
            if (q.status === 401) {
              $("erase-state").textContent = t("js.done");
              $("erase-done").hidden = false;
              return;
            }
          }
        } catch (e) { /* restarting: not answering yet */ }
        const secs = Math.round((Date.now() - started) / 1000);
        $("erase-state").textContent = t("js.erasing", { s: secs });
        setTimeout(poll, 1000);
      };
      setTimeout(poll, 1000);
    });
  },

  async "recovery-codes"() {
    const s = await loadSession();
    if (!s) return;
    wireLogout();
    $("codes-username").value = s.username;
    $("offer-2fa").hidden = new URLSearchParams(location.search).get("offer") !== "2fa";
    $("sheet-url").textContent = location.origin + "/login";
    const r = await api("GET", "/recovery");
    if (r.status === 200 && r.data.codes_left !== undefined && s.role === "admin") {
      $("codes-left").textContent = r.data.codes_left ? t("js.codes_unused", { n: r.data.codes_left }) : t("js.codes_none");
    }
    $("print-codes").addEventListener("click", () => window.print());
    $("codes-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError();
      const g = await api("POST", "/recovery-codes", { password: $("codes_password").value });
      $("codes_password").value = "";
      if (g.status !== 200) {
        showError(g.data.error === "invalid_credentials" ? t("js.codes_password_wrong") : explain(g));
        return;
      }
      $("sheet-user").textContent = g.data.username;
      $("sheet-model").textContent = g.data.model || "";
      $("sheet-serial").textContent = g.data.serial || "";
      $("sheet-date").textContent = localDate(g.data.generated_at);
      const list = $("codes-list");
      list.textContent = "";
      for (const c of g.data.codes) { const li = document.createElement("li"); li.textContent = c; list.appendChild(li); }
      $("codes-intro").hidden = true;
      $("codes-sheet").hidden = false;
      $("print-codes").focus();
    });
  },

  async forgot() {
    // Which ways back in this box has, said when the page opens (not after a submit).
    const g = await api("GET", "/recovery");
    $("checking").hidden = true;
    const d = g.status === 200 ? g.data : { available: true };
    const m = d.button && d.button.mode !== undefined ? d.button.mode : d.button;
    const pressWords = m === "credentials" ? t("js.press_credentials")
      : m === "mail" ? (d.available ? t("js.press_mail") : t("js.press_mail_dead"))
      : m === "off" ? t("js.press_off") : "";
    $("way-email").textContent = d.available ? t("js.forgot_email_yes") : t("js.forgot_email_no");
    $("way-button").textContent = t("js.forgot_button", { what: pressWords });
    $("button-state").textContent = pressWords;
    $("ways").hidden = false;
    $("forgot-form").hidden = !d.available;
    $("not-configured").hidden = !!d.available;
    if (d.available) $("username").focus();
    $("code-link").addEventListener("click", (ev) => { ev.preventDefault(); $("use-code").click(); });
    $("forgot-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError();
      notice("");
      const r = await api("POST", "/forgot", { username: $("username").value, email: $("email").value });
      if (r.status === 202) {
        notice(t("js.forgot_sent"));
      } else if (r.status === 409) {
        $("forgot-form").hidden = true;
        $("not-configured").hidden = false;
      } else {
        showError(explain(r));
      }
    });
    $("use-code").addEventListener("click", () => {
      $("code-section").hidden = false;
      $("code-username").value = $("username").value;
      $("code-username").focus();
    });
    $("code-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError("code-error");
      const np = confirmedNewPassword("code-error");
      if (np === null) return;
      const body = { username: $("code-username").value, code: $("code").value, new_password: np };
      if ($("code-totp").value) body.totp = $("code-totp").value;
      const r = await api("POST", "/recover-with-code", body);
      if (r.status === 204) {
        $("code-section").hidden = true;
        $("code-done").hidden = false;
        $("code-done").querySelector("a").focus();
        return;
      }
      $("code-totp").value = "";
      if (r.data.error === "two_factor_required") { showError(r.data.message, null, "code-error"); $("code-totp").focus(); return; }
      $("code").value = "";
      if (r.data.error === "weak_password") showError(r.data.message, r.data.reasons, "code-error");
      else showError(explain(r), null, "code-error");
    });
  },

  async "confirm-email"() {
    const token = new URLSearchParams(location.search).get("token") || "";
    history.replaceState(null, "", "/confirm-email");
    const send = async () => {
      clearError();
      const r = await api("POST", "/confirm-email", { token });
      $("working").hidden = true;
      if (r.status === 204) { $("done").hidden = false; $("confirm-form").hidden = true; return; }
      if (r.status === 200 && r.data.already_confirmed) {
        $("already").textContent = t("js.already_confirmed", { date: localDate(r.data.confirmed_at) });
        $("already").hidden = false; $("confirm-form").hidden = true; return;
      }
      showError(r.status === 410 ? t("js.confirm_dead") : explain(r));
      $("confirm-form").hidden = r.status === 410;
    };
    $("confirm-form").addEventListener("submit", (ev) => { ev.preventDefault(); send(); });
    send();
  },

  async reset() {
    // The token moves from the query to the fragment: the fragment is never sent to a
    // server (nor in a Referer), and a reload or a phone reopening the tab keeps it.
    const q = new URLSearchParams(location.search).get("token");
    if (q) history.replaceState(null, "", "/reset#" + q);
    const token = q || decodeURIComponent(location.hash.slice(1));
    const dead = () => {
      $("checking").hidden = true; $("reset-form").hidden = true; $("link-ok").hidden = true;
      $("link-dead").hidden = false;
    };
    $("reset-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError();
      const np = confirmedNewPassword();
      if (np === null) return;
      const r = await api("POST", "/reset", { token, new_password: np });
      if (r.status === 204) {
        history.replaceState(null, "", "/reset");
        $("reset-form").hidden = true;
        $("link-ok").hidden = true;
        $("done").hidden = false;
        return;
      }
      if (r.status === 410) { dead(); return; }
      if (r.data.error === "weak_password") showError(r.data.message, r.data.reasons);
      else showError(explain(r));
    });
    const c = token ? await api("POST", "/reset/check", { token }) : { status: 410, data: {} };
    $("checking").hidden = true;
    if (c.status === 410) { dead(); return; }
    if (c.status !== 200) { $("reset-form").hidden = false; showError(explain(c)); return; }
    $("link-for").textContent = t("js.link_for", { user: c.data.username, until: localTime(c.data.expires_at) });
    $("link-box").textContent = c.data.serial ? t("js.link_box", { model: c.data.model || "", serial: c.data.serial }) : "";
    $("link-ok").hidden = false;
    $("reset-form").hidden = false;
    $("new_password").focus();
  },

  async "settings-email"() {
    const s = await loadSession();
    if (!s) return;
    wireLogout();
    const g = await api("GET", "/settings/smtp");
    if (g.status === 200 && g.data.configured) {
      for (const k of ["host", "port", "security", "from", "timeout_s"]) $(k).value = g.data[k];
      $("smtp-username").value = g.data.username;
      $("pw-kept").hidden = !g.data.password_set;
    }
    const form = () => {
      const f = {
        host: $("host").value, port: Number($("port").value), security: $("security").value,
        username: $("smtp-username").value, from: $("from").value, timeout_s: Number($("timeout_s").value),
      };
      if ($("smtp-password").value) f.password = $("smtp-password").value;
      return f;
    };
    $("test-button").addEventListener("click", async () => {
      clearError();
      notice(t("js.test_sending"));
      const f = form();
      if ($("to").value) f.to = $("to").value;
      const r = await api("POST", "/settings/smtp/test", f);
      notice("");
      if (r.status === 200 && r.data.ok) notice(t("js.test_sent"));
      else if (r.status === 200) showError(t("js.test_failed", { stage: stageWords(r.data.stage), detail: withDetail(r.data) }));
      else showError(explain(r));
    });
    $("smtp-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      clearError();
      notice("");
      const f = form();
      if ($("smtp-current-password").value) f.current_password = $("smtp-current-password").value;
      const r = await api("PUT", "/settings/smtp", f);
      if (r.status === 200) {
        notice(t("js.smtp_saved"));
        $("smtp-password").value = "";
        $("smtp-current-password").value = "";
        $("pw-kept").hidden = !r.data.password_set;
      } else showError(explain(r));
    });
  },
};

document.addEventListener("DOMContentLoaded", async () => {
  wirePicker();
  wirePasswordToggles();
  const p = pages[document.body.dataset.page];
  if (p) await p();
  // Every handler is wired: tests (and nothing else) wait for this.
  document.body.dataset.ready = "1";
});
