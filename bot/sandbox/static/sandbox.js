// The sandbox page: polls /api/state, draws what the bot sent (the server renders the
// Block Kit), and posts what you do to /api/... as the person chosen at the top.
"use strict";

const $ = (selector) => document.querySelector(selector);
const view = { me: localStorage.getItem("escbot-sandbox-me"), channel: null, thread: null,
               state: null, seen: "", modal: null };

async function api(path, body) {
  const answer = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json" },
                                     body: JSON.stringify({ user: view.me, ...body }) });
  const data = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    alert(data.error || `the sandbox answered ${answer.status}`);
    view.seen = "";  // redraw: a button disabled by the click is enabled again
  }
  poll();
  return data;
}

async function poll() {
  try {
    const answer = await fetch(`/api/state?user=${encodeURIComponent(view.me || "")}`);
    const text = await answer.text();
    if (!answer.ok) {
      if (view.me) { view.me = null; return poll(); }  // a remembered person no longer here
      return;
    }
    if (text === view.seen) return;
    view.seen = text;
    draw(JSON.parse(text));
  } catch (error) {
    console.warn("sandbox: polling failed", error);
  }
}

function draw(state) {
  view.state = state;
  view.me = state.me;
  drawPeople(state);
  if (!state.channels.some((c) => c.id === view.channel)) view.channel = state.channels[0]?.id;
  drawChannels(state);
  const channel = state.channels.find((c) => c.id === view.channel);
  $("#channel-title").textContent = channel ? `#${channel.name}` : "";
  $("#composer").placeholder = channel ? `Message #${channel.name}, or /agent help` : "";
  drawList($("#messages"), channel ? channel.messages : [], true);
  drawThread(channel);
  drawModal(state.modal);
}

function drawPeople(state) {
  const select = $("#who");
  const options = state.people.map((p) => `${p.user_id}:${p.name} (${p.role})`).join("|");
  if (select.dataset.options !== options) {
    select.innerHTML = "";
    for (const person of state.people) {
      const option = document.createElement("option");
      option.value = person.user_id;
      option.textContent = `${person.name} (${person.role})`;
      select.append(option);
    }
    select.dataset.options = options;
  }
  select.value = state.me;
}

function drawChannels(state) {
  const list = $("#channel-list");
  list.innerHTML = "";
  for (const channel of state.channels) {
    const item = document.createElement("li");
    item.className = "channel" + (channel.id === view.channel ? " active" : "");
    item.dataset.id = channel.id;
    item.innerHTML = `<span># ${escapeText(channel.name)}</span><span class="count">${channel.messages.length || ""}</span>`;
    list.append(item);
  }
}

function messageHtml(message, inThread) {
  const initial = escapeText(message.author.slice(0, 1).toUpperCase());
  const badge = message.bot ? '<span class="app-badge">APP</span>' : "";
  const time = message.private ? "" : new Date(message.at * 1000).toLocaleTimeString();
  const privateNote = message.private ? '<div class="private-note">👁 Only visible to you</div>' : "";
  const edited = message.edited ? ' <span class="edited">(edited)</span>' : "";
  const reactions = message.reactions.length
    ? `<div class="reactions">${message.reactions.map((r) => `<span class="reaction" title=":${escapeText(r.name)}:">${escapeText(r.emoji)} ${r.count}</span>`).join("")}</div>` : "";
  const replies = message.replies || [];
  const threadLink = inThread || message.private ? "" :
    `<button type="button" class="thread-link">${replies.length ? `${replies.length} repl${replies.length === 1 ? "y" : "ies"}` : "Reply in thread"}</button>`;
  return `<div class="msg ${message.bot ? "bot" : "person"}${message.private ? " private" : ""}" data-ts="${escapeText(message.ts)}">
    <div class="avatar">${initial}</div><div class="body">${privateNote}
    <div class="meta"><b>${escapeText(message.author)}</b>${badge}${time}${edited}</div>
    <div class="content">${message.html}</div>${reactions}${threadLink}</div></div>`;
}

function drawList(box, messages, inChannel) {
  // Follow new messages as Slack does: to the bottom when one arrives or you were there.
  const atBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const key = `${view.channel}:${messages.length}`;
  box.innerHTML = messages.map((m) => messageHtml(m, !inChannel)).join("");
  if (atBottom || box.dataset.drawn !== key) box.scrollTop = box.scrollHeight;
  box.dataset.drawn = key;
}

function drawThread(channel) {
  const pane = $("#thread");
  const root = channel && view.thread && view.thread.channel === channel.id
    ? channel.messages.find((m) => m.ts === view.thread.ts) : null;
  if (!root) { pane.hidden = true; return; }
  pane.hidden = false;
  drawList($("#thread-messages"), [root, ...root.replies], false);
}

function drawModal(modal) {
  const overlay = $("#modal");
  if (!modal) { overlay.hidden = true; view.modal = null; return; }
  const key = `${modal.id}:${modal.hash}`;
  if (view.modal !== key) {
    view.modal = key;
    $("#modal-title").innerHTML = modal.title;
    $("#modal-body").innerHTML = modal.html;
    $("#modal-close").innerHTML = modal.close;
    $("#modal-submit").innerHTML = modal.submit || "";
    $("#modal-submit").hidden = !modal.submit;
    overlay.dataset.viewId = modal.id;
  }
  for (const slot of overlay.querySelectorAll("[data-error-for]")) {
    slot.textContent = modal.errors[slot.dataset.errorFor] || "";
  }
  overlay.hidden = false;
}

function modalValues() {
  const values = {};
  for (const field of $("#modal-body").querySelectorAll("[data-block-id][data-kind]")) {
    const { blockId, actionId, kind } = field.dataset;
    let value;
    if (kind === "plain_text_input") {
      value = { type: kind, value: field.value };
    } else {
      const picked = kind === "radio_buttons" ? field.querySelector("input:checked") : field;
      const option = picked && picked.value ? JSON.parse(picked.value) : null;
      value = { type: kind, selected_option: option };
    }
    (values[blockId] ||= {})[actionId] = value;
  }
  return values;
}

function askFirst(confirm) {
  if (!confirm) return Promise.resolve(true);
  return new Promise((resolve) => {
    const overlay = $("#confirm");
    $("#confirm-title").innerHTML = confirm.title;
    $("#confirm-text").innerHTML = confirm.text;
    $("#confirm-yes").innerHTML = confirm.confirm;
    $("#confirm-yes").className = `bk-button bk-${confirm.style}`;
    $("#confirm-deny").innerHTML = confirm.deny;
    overlay.hidden = false;
    const done = (answer) => { overlay.hidden = true; resolve(answer); };
    $("#confirm-yes").onclick = () => done(true);
    $("#confirm-deny").onclick = () => done(false);
  });
}

function escapeText(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

document.addEventListener("click", async (event) => {
  const channelItem = event.target.closest("#channel-list .channel");
  if (channelItem) { view.channel = channelItem.dataset.id; view.thread = null; view.seen = ""; return poll(); }
  const message = event.target.closest(".msg");
  if (event.target.closest(".thread-link") && message) {
    view.thread = { channel: view.channel, ts: message.dataset.ts };
    view.seen = "";
    return poll();
  }
  const button = event.target.closest("button.bk-button[data-action]");
  if (button && message) {
    if (button.dataset.url) window.open(button.dataset.url, "_blank", "noopener");
    const confirm = button.dataset.confirm ? JSON.parse(button.dataset.confirm) : null;
    if (!(await askFirst(confirm))) return;
    button.disabled = true;
    await api("/api/click", { channel: view.channel, ts: message.dataset.ts, action: JSON.parse(button.dataset.action) });
  }
});

$("#who").addEventListener("change", (event) => {
  view.me = event.target.value;
  localStorage.setItem("escbot-sandbox-me", view.me);
  view.seen = "";
  view.modal = null;
  poll();
});
$("#composer-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("#composer").value;
  if (!text.trim()) return;
  $("#composer").value = "";
  await api("/api/say", { channel: view.channel, text });
});
$("#thread-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("#thread-composer").value;
  if (!text.trim() || !view.thread) return;
  $("#thread-composer").value = "";
  await api("/api/reply", { channel: view.thread.channel, thread_ts: view.thread.ts, text });
});
$("#thread-close").addEventListener("click", () => { view.thread = null; view.seen = ""; poll(); });
$("#modal-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  await api("/api/submit", { view_id: $("#modal").dataset.viewId, values: modalValues() });
});
$("#modal-close").addEventListener("click", async () => {
  await api("/api/close", { view_id: $("#modal").dataset.viewId });
});

poll();
setInterval(poll, 700);
