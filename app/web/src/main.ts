// LazyFlow Mini App: shows the Telegram user (/me) and their tasks (list, add, toggle).
// Vanilla TS, no dependencies. Auth: `Authorization: tma <Telegram.WebApp.initData>`.
// API base comes from /config.js (window.LAZYFLOW_CONFIG = {apiBase}), served by Caddy from env.

interface Task {
  id: number;
  title: string;
  done: boolean;
}
interface Me {
  id: number;
  first_name: string;
  username: string | null;
}
declare global {
  interface Window {
    LAZYFLOW_CONFIG?: { apiBase?: string };
    Telegram?: { WebApp?: { initData: string; ready(): void; expand(): void } };
  }
}

const webApp = window.Telegram?.WebApp;
const apiBase = (window.LAZYFLOW_CONFIG?.apiBase ?? "").replace(/\/+$/, "");
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const who = $<HTMLParagraphElement>("who");
const statusEl = $<HTMLParagraphElement>("status");
const list = $<HTMLUListElement>("tasks");
const form = $<HTMLFormElement>("add");
const titleInput = $<HTMLInputElement>("title");

async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const headers = new Headers(init.headers);
  headers.set("Authorization", `tma ${webApp?.initData ?? ""}`);
  if (init.body) headers.set("Content-Type", "application/json");
  const res = await fetch(`${apiBase}${path}`, { ...init, headers });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    throw new Error(`${res.status} ${(body as { message?: string; error?: string }).message ?? (body as { error?: string }).error ?? res.statusText}`);
  }
  return (res.status === 204 ? null : await res.json()) as T;
}

function setStatus(text: string) {
  statusEl.textContent = text;
}

function render(tasks: Task[]) {
  list.replaceChildren(
    ...tasks.map((t) => {
      const li = document.createElement("li");
      li.className = t.done ? "done" : "";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = t.done;
      box.addEventListener("change", () => void toggle(t, box.checked));
      const span = document.createElement("span");
      span.textContent = t.title; // textContent: user data never becomes HTML
      li.append(box, span);
      return li;
    }),
  );
  if (!tasks.length) setStatus("No tasks yet.");
}

async function load() {
  const { tasks } = await api<{ tasks: Task[] }>("/tasks");
  setStatus("");
  render(tasks);
}

async function toggle(t: Task, done: boolean) {
  try {
    await api<Task>(`/tasks/${t.id}`, { method: "PATCH", body: JSON.stringify({ done }) });
    await load();
  } catch (e) {
    setStatus(`Could not update: ${(e as Error).message}`);
  }
}

form.addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const title = titleInput.value.trim();
  if (!title) return;
  try {
    await api<Task>("/tasks", { method: "POST", body: JSON.stringify({ title }) });
    titleInput.value = "";
    await load();
  } catch (e) {
    setStatus(`Could not add: ${(e as Error).message}`);
  }
});

async function main() {
  webApp?.ready();
  webApp?.expand();
  if (!webApp?.initData) {
    who.textContent = "Open this page from the bot in Telegram.";
    form.hidden = true;
    return;
  }
  try {
    const me = await api<Me>("/me");
    who.textContent = `Signed in as ${me.first_name}${me.username ? ` (@${me.username})` : ""}`;
    await load();
  } catch (e) {
    who.textContent = "";
    setStatus(`Could not load: ${(e as Error).message}`);
  }
}

void main();

export {};
